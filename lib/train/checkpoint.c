/* checkpoint.c -- trainable model <-> GGUF; see checkpoint.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "core/alloc.h"
#include "diffusion/softmask.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/model.h"

/* ------------------------------------------------------------------ save */

typedef struct save_ctx {
    const sd_tmodel *m;
    uint32_t type;
    int permute_qk; /* llada trained with NEOX: write llama.cpp's row order */
} save_ctx;

/* Q/K rows of each head: row 2i <- i, row 2i+1 <- i + hd/2 (llama.cpp's permute). */
static void permute_rows(float *dst, const float *src, int64_t rows, int64_t cols, int64_t hd) {
    for (int64_t h = 0; h < rows / hd; h++)
        for (int64_t i = 0; i < hd / 2; i++) {
            memcpy(dst + (h * hd + 2 * i) * cols, src + (h * hd + i) * cols, (size_t)cols * sizeof(float));
            memcpy(dst + (h * hd + 2 * i + 1) * cols, src + (h * hd + i + hd / 2) * cols,
                   (size_t)cols * sizeof(float));
        }
}

static int is_qk(const char *name) {
    size_t n = strlen(name);
    return n > 14 && (!strcmp(name + n - 14, ".attn_q.weight") || !strcmp(name + n - 14, ".attn_k.weight"));
}

static int32_t fill_tensor(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err) {
    const save_ctx *c = user;
    const sd_ttensor *t = sd_tmodel_find(c->m, name);
    if (!t) return sd_fail(err, SMDIFF_E_INTERNAL, "checkpoint: no tensor %s", name);
    const float *src = c->m->params + t->offset;
    int64_t n = t->rows * t->cols;
    uint32_t type = t->rows == 1 ? SD_GGML_F32 : c->type;
    if (sd_ggml_type_size(type, (uint64_t)n) != n_bytes)
        return sd_fail(err, SMDIFF_E_INTERNAL, "checkpoint: size of %s", name);
    float *tmp = NULL;
    if (c->permute_qk && is_qk(name)) {
        tmp = sd_malloc((size_t)n * sizeof(float));
        if (!tmp) return sd_fail(err, SMDIFF_E_NOMEM, "checkpoint: out of memory");
        permute_rows(tmp, src, t->rows, t->cols, c->m->hp.n_embd / c->m->hp.n_head);
        src = tmp;
    }
    sd_ggml_from_f32(type, src, dst, n);
    sd_free(tmp);
    return SMDIFF_OK;
}

int32_t sd_tmodel_save_gguf(const sd_tmodel *m, const char *path, const sd_ckpt_opts *opts,
                            sd_error *err) {
    sd_error local = {0};
    if (!err) err = &local;
    sd_error_clear(err);
    sd_ckpt_opts o = {0};
    if (opts) o = *opts;
    if (!m || !path) return sd_fail(err, SMDIFF_E_INVAL, "checkpoint: NULL model or path");
    if (o.matrix_type != SD_GGML_F32 && o.matrix_type != SD_GGML_F16 &&
        o.matrix_type != SD_GGML_BF16 && o.matrix_type != SD_GGML_Q8_0)
        return sd_fail(err, SMDIFF_E_INVAL, "checkpoint: tensor type %u is not F32, F16, BF16 or Q8_0",
                       o.matrix_type);
    const sd_hparams *hp = &m->hp;
    if (o.matrix_type == SD_GGML_Q8_0)
        for (int32_t i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].rows > 1 && m->tensors[i].cols % 32)
                return sd_fail(err, SMDIFF_E_INVAL, "checkpoint: Q8_0 needs rows of a multiple of 32 "
                               "(%s has %lld)", m->tensors[i].name, (long long)m->tensors[i].cols);
    sd_gguf_writer *w = NULL;
    int32_t rc = sd_gguf_writer_create(&w, err);
    if (rc) return rc;
    const char *arch = hp->arch == SD_ARCH_DREAM ? "dream" : hp->arch == SD_ARCH_MDLM ? "mdlm" : "llada";
    char key[96];
#define KEY(SUFFIX) (snprintf(key, sizeof key, "%s%s", arch, SUFFIX), key)
    const sd_error *we = sd_gguf_writer_error(w);
    rc = sd_gguf_set_str(w, "general.architecture", arch);
    if (!rc) rc = sd_gguf_set_str(w, "general.name", o.name ? o.name : "smdiff-trained");
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".block_count"), (uint32_t)hp->n_layer);
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".context_length"), (uint32_t)(hp->n_ctx > 0 ? hp->n_ctx : m->L_max));
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".embedding_length"), (uint32_t)hp->n_embd);
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".feed_forward_length"), (uint32_t)hp->n_ff);
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".attention.head_count"), (uint32_t)hp->n_head);
    if (!rc) rc = sd_gguf_set_u32(w, KEY(".attention.head_count_kv"), (uint32_t)hp->n_head_kv);
    if (!rc) rc = sd_gguf_set_f32(w, KEY(".rope.freq_base"), hp->rope_base);
    if (hp->arch == SD_ARCH_MDLM) { /* docs/MODELS.md */
        if (!rc) rc = sd_gguf_set_f32(w, KEY(".attention.layer_norm_epsilon"), hp->norm_eps);
        if (!rc) rc = sd_gguf_set_u32(w, KEY(".conditioning_length"), (uint32_t)hp->n_cond);
        if (!rc) rc = sd_gguf_set_u32(w, KEY(".timestep_embedding_length"), (uint32_t)hp->n_freq);
        if (!rc) rc = sd_gguf_set_bool(w, KEY(".time_conditioning"), hp->time_cond != 0);
    } else if (!rc) {
        rc = sd_gguf_set_f32(w, KEY(".attention.layer_norm_rms_epsilon"), hp->norm_eps);
    }
#undef KEY
    if (!rc) rc = sd_gguf_set_bool(w, "diffusion.shift_logits", hp->shift_logits != 0);
    /* the tokenizer first, so our token ids below replace the source's */
    if (!rc && o.tokenizer_from) {
        for (int64_t i = 0; !rc && i < sd_gguf_n_kv(o.tokenizer_from); i++) {
            sd_gguf_str k = sd_gguf_key(o.tokenizer_from, i);
            if (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10)) rc = sd_gguf_copy_kv(w, o.tokenizer_from, i, err);
        }
    }
    const struct { const char *key; int32_t id; } ids[] = {
        {"tokenizer.ggml.mask_token_id", hp->mask_id}, {"tokenizer.ggml.bos_token_id", hp->bos_id},
        {"tokenizer.ggml.eos_token_id", hp->eos_id}, {"tokenizer.ggml.padding_token_id", hp->pad_id}};
    for (size_t i = 0; !rc && i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0 && ids[i].id < hp->n_vocab) rc = sd_gguf_set_u32(w, ids[i].key, (uint32_t)ids[i].id);
    const float *raw = m->p.sm_raw;
    if (!rc) rc = sd_gguf_set_str(w, "smdiff.softmask.mode", "entropy");
    if (!rc && o.sm_k > 0) rc = sd_gguf_set_i32(w, "smdiff.softmask.k", o.sm_k);
    if (!rc) rc = sd_gguf_set_f32(w, "smdiff.softmask.scale", (float)sd_sigmoid(raw[0]));
    if (!rc) rc = sd_gguf_set_f32(w, "smdiff.softmask.steepness", (float)sd_softplus(raw[1]));
    if (!rc) rc = sd_gguf_set_f32(w, "smdiff.softmask.centre", (float)-sd_softplus(raw[2]));
    if (!rc) rc = sd_gguf_set_arr_f32(w, "smdiff.softmask.raw", raw, 3);

    save_ctx c = {m, o.matrix_type, hp->arch == SD_ARCH_LLADA && !hp->rope_permuted};
    for (int32_t i = 0; !rc && i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        if (t->group == SD_TGROUP_SM) continue; /* in metadata */
        uint64_t ne[2] = {(uint64_t)t->cols, (uint64_t)t->rows};
        uint32_t nd = t->rows == 1 ? 1 : 2, type = t->rows == 1 ? SD_GGML_F32 : o.matrix_type;
        rc = sd_gguf_add_tensor_fill(w, t->name, nd, ne, type, fill_tensor, &c);
    }
    if (rc && !err->code) sd_error_forward(err, we);
    if (!rc) rc = sd_gguf_write(w, path, err);
    sd_gguf_writer_free(w);
    return rc;
}

/* ------------------------------------------------------------------ load */

int32_t sd_tmodel_from_model(const struct smdiff_model *im, int64_t B_max, int64_t L_max, int64_t R_max,
                             sd_tmodel **out, sd_error *err) {
    sd_error local = {0};
    if (!err) err = &local;
    if (!out || !im || !im->loaded) return sd_fail(err, SMDIFF_E_INVAL, "checkpoint: no loaded model");
    *out = NULL;
    sd_hparams hp = im->w.hp;
    sd_tmodel *m = NULL;
    int32_t rc = sd_tmodel_create(&hp, B_max, L_max, R_max, &m, err);
    for (int32_t i = 0; !rc && i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        float *dst = m->params + t->offset;
        if (t->group == SD_TGROUP_SM) continue;
        const sd_gguf_tensor *gt = sd_gguf_find_tensor(im->gguf, t->name);
        if (!gt && !strcmp(t->name, "output.weight")) gt = sd_gguf_find_tensor(im->gguf, "token_embd.weight");
        if (!gt) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "checkpoint: tensor %s is missing", t->name);
            break;
        }
        uint64_t rows = gt->n_dims > 1 ? gt->ne[1] : 1;
        if (gt->ne[0] != (uint64_t)t->cols || rows != (uint64_t)t->rows || gt->n_dims > 2 ||
            !sd_ggml_is_supported(gt->type)) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "checkpoint: tensor %s has shape [%llu, %llu] type %s, "
                         "expected [%lld, %lld]", t->name, (unsigned long long)rows,
                         (unsigned long long)gt->ne[0], sd_ggml_type_name(gt->type),
                         (long long)t->rows, (long long)t->cols);
            break;
        }
        sd_ggml_to_f32(gt->type, gt->data, dst, t->rows * t->cols);
    }
    if (!rc) {
        float *raw = m->p.sm_raw;
        const void *rd = sd_gguf_arr_data(im->gguf, "smdiff.softmask.raw");
        uint32_t et = 0;
        uint64_t n = 0;
        if (rd && !sd_gguf_get_arr(im->gguf, "smdiff.softmask.raw", &et, &n, err) && et == SD_GGUF_FLOAT32 && n == 3) {
            memcpy(raw, rd, 3 * sizeof(float));
        } else {
            double s = 1e-6, a = 6.66, b = -0.75, v;
            sd_error e2 = {0};
            if (!sd_gguf_get_f64(im->gguf, "smdiff.softmask.scale", &v, &e2) && v > 0 && v < 1) s = v;
            if (!sd_gguf_get_f64(im->gguf, "smdiff.softmask.steepness", &v, &e2) && v > 0) a = v;
            if (!sd_gguf_get_f64(im->gguf, "smdiff.softmask.centre", &v, &e2) && v < 0) b = v;
            raw[0] = (float)sd_logit(s);
            raw[1] = (float)sd_softplus_inv(a);
            raw[2] = (float)sd_softplus_inv(-b);
        }
        if (!isfinite(raw[0]) || !isfinite(raw[1]) || !isfinite(raw[2]))
            rc = sd_fail(err, SMDIFF_E_FORMAT, "checkpoint: soft-masking parameters are not finite");
    }
    if (rc) {
        sd_tmodel_free(m);
        return rc;
    }
    *out = m;
    return SMDIFF_OK;
}

int32_t sd_tmodel_load_gguf(const char *path, int64_t B_max, int64_t L_max, int64_t R_max,
                            sd_tmodel **out, sd_error *err) {
    sd_error local = {0};
    if (!err) err = &local;
    if (!out || !path) return sd_fail(err, SMDIFF_E_INVAL, "checkpoint: NULL path or out");
    *out = NULL;
    /* parse exactly as the inference path does */
    struct smdiff_model *im = sd_calloc(1, sizeof *im);
    if (!im) return sd_fail(err, SMDIFF_E_NOMEM, "checkpoint: out of memory");
    atomic_init(&im->refcount, 1);
    sd_options_defaults(&sd_model_options, im->opt);
    im->opt[SD_OPT_SLOT(SMDIFF_MODEL_USE_MMAP)].i = 1;
    im->opt[SD_OPT_SLOT(SMDIFF_MODEL_THREADS)].i = sd_blas_get_threads(); /* leave BLAS threads as they are */
    int32_t rc = sd_model_load(im, path);
    if (rc) sd_error_forward(err, &im->err);
    sd_error e = {0};
    if (!rc && (rc = sd_tmodel_from_model(im, B_max, L_max, R_max, out, &e))) sd_fail(err, rc, "%s: %s", path, e.msg);
    sd_model_destroy(im);
    return rc;
}
