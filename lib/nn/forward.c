/* forward.c -- one forward pass of a dream/llada transformer over a canvas
 * of input embeddings (mdlm's DiT is in dit.c, reached from here). See
 * transformer.h for shapes.
 *
 * Memory: every activation lives in the caller's arena, carved once per
 * call in the order of `layout` below; nothing is allocated per layer.
 * Non-F32 weights stay in their stored type and are dequantised panel by
 * panel (ops.c, sd_matmul_w), so peak memory is the weights plus O(L).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "ops.h"
#include "smdiff/smdiff.h"
#include "transformer.h"

/* The arena pieces of one forward pass, in floats. */
typedef struct {
    size_t x, xn, q, k, v, att, scores, gate, up, rope, panel, sel;
} fwd_layout;

static fwd_layout layout(const sd_hparams *hp, int64_t L, int64_t n_rows) {
    int64_t d = hp->n_embd, hd = d / (hp->n_head ? hp->n_head : 1);
    int64_t qd = (int64_t)hp->n_head * hd, kd = (int64_t)hp->n_head_kv * hd;
    int64_t max_cols = d > hp->n_ff ? d : hp->n_ff;
    if (qd > max_cols) max_cols = qd;
    fwd_layout f;
    f.x = (size_t)(L * d);
    f.xn = (size_t)(L * d);
    f.q = (size_t)(L * qd);
    f.k = (size_t)(L * kd);
    f.v = (size_t)(L * kd);
    f.att = (size_t)(L * qd);
    f.scores = (size_t)(L * L);
    f.gate = (size_t)(L * hp->n_ff);
    f.up = (size_t)(L * hp->n_ff);
    f.rope = (size_t)(L * (hd / 2));
    f.panel = sd_panel_floats(max_cols);
    f.sel = (size_t)(n_rows * d);
    return f;
}

static size_t round64(size_t floats) { return (floats * sizeof(float) + 63) & ~(size_t)63; }

size_t sd_forward_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows) {
    if (!hp || L <= 0 || n_rows < 0) return 0;
    if (hp->arch == SD_ARCH_MDLM) return sd_dit_scratch_bytes(hp, L, n_rows);
    fwd_layout f = layout(hp, L, n_rows);
    /* The two RoPE tables (cos, sin) share one size. */
    return round64(f.x) + round64(f.xn) + round64(f.q) + round64(f.k) + round64(f.v) +
           round64(f.att) + round64(f.scores) + round64(f.gate) + round64(f.up) +
           2 * round64(f.rope) + round64(f.panel) + round64(f.sel ? f.sel : 1);
}

/* out[L, n] += b[n] per row. */
static void add_bias(float *out, const sd_weight *b, int64_t L, int64_t n) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < n; j++) out[i * n + j] += bv[j];
}

static int64_t w_rows(const sd_weight *w) { return w->rows; }

static int32_t forward_llama(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows,
                             int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                             sd_arena *scratch, sd_error *err);

int32_t sd_forward(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows,
                   int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                   sd_arena *scratch, sd_error *err) {
    return sd_forward_sigma(w, 0.0f, embd, L, rows, n_rows, logits, hidden, opts, scratch, err);
}

int32_t sd_forward_sigma(const sd_weights *w, float sigma, const float *embd, int64_t L,
                         const int32_t *rows, int64_t n_rows, float *logits, float *hidden,
                         const sd_forward_opts *opts, sd_arena *scratch, sd_error *err) {
    if (L <= 0 || n_rows < 0 || (n_rows > 0 && (!rows || !logits)) || !embd || !scratch)
        return sd_fail(err, SMDIFF_E_INVAL, "sd_forward: invalid argument (L %lld, n_rows %lld)",
                       (long long)L, (long long)n_rows);
    for (int64_t r = 0; r < n_rows; r++)
        if (rows[r] < 0 || rows[r] >= L)
            return sd_fail(err, SMDIFF_E_RANGE, "sd_forward: row %d outside the canvas [0, %lld)",
                           (int)rows[r], (long long)L);
    sd_forward_opts none = {0, NULL, NULL, NULL};
    if (!opts) opts = &none;
    /* BLAS buffers of new OpenBLAS workers are checked against the memory
     * limit around every forward (blas.h) */
    int32_t rc = sd_blas_enter(err);
    if (rc) return rc;
    if (w->hp.arch == SD_ARCH_MDLM)
        rc = sd_dit_forward(w, sigma, embd, L, rows, n_rows, logits, hidden, opts, scratch, err);
    else
        rc = forward_llama(w, embd, L, rows, n_rows, logits, hidden, opts, scratch, err);
    sd_blas_leave();
    return rc;
}

/* dream and llada: pre-norm RMSNorm blocks with SwiGLU. */
static int32_t forward_llama(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows,
                             int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                             sd_arena *scratch, sd_error *err) {
    /* embd[L, d], rows[n_rows] -> logits[n_rows, V], hidden[L, d] (optional) */
    const sd_hparams *hp = &w->hp;
    sd_pool *pool = opts->pool;

    const int64_t d = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, hd = d / H;
    const int64_t qd = H * hd, kd = Hkv * hd, F = hp->n_ff, V = hp->n_vocab;
    fwd_layout f = layout(hp, L, n_rows);

    sd_arena_mark mark = sd_arena_save(scratch);
    float *x = sd_arena_floats(scratch, f.x), *xn = sd_arena_floats(scratch, f.xn);
    float *q = sd_arena_floats(scratch, f.q), *k = sd_arena_floats(scratch, f.k);
    float *v = sd_arena_floats(scratch, f.v), *att = sd_arena_floats(scratch, f.att);
    float *scores = sd_arena_floats(scratch, f.scores);
    float *gate = sd_arena_floats(scratch, f.gate), *up = sd_arena_floats(scratch, f.up);
    float *rc = sd_arena_floats(scratch, f.rope), *rs = sd_arena_floats(scratch, f.rope);
    float *panel = sd_arena_floats(scratch, f.panel);
    float *sel = sd_arena_floats(scratch, f.sel ? f.sel : 1);
    if (!x || !xn || !q || !k || !v || !att || !scores || !gate || !up || !rc || !rs || !panel || !sel) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_NOMEM,
                       "sd_forward: scratch arena too small for L = %lld (needs %zu bytes)",
                       (long long)L, sd_forward_scratch_bytes(hp, L, n_rows));
    }

    /* dream and Hugging Face layouts rotate half-split pairs; a llama.cpp
     * LLaDA file has Q/K rows permuted so adjacent pairs give the same result. */
    const int neox = !(hp->arch == SD_ARCH_LLADA && hp->rope_permuted);
    sd_rope_table(rc, rs, L, hd, hp->rope_base);
    memcpy(x, embd, (size_t)(L * d) * sizeof(float));

    for (int32_t il = 0; il < hp->n_layer; il++) {
        if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
            sd_arena_restore(scratch, mark);
            return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before layer %d", (int)il);
        }
        const sd_layer_weights *lw = &w->layers[il];

        /* attention block: x += wo(attn(rope(q), rope(k), v)) */
        sd_rmsnorm(xn, x, lw->attn_norm.data, L, d, hp->norm_eps, pool);
        sd_matmul_w(q, qd, 0.0f, xn, L, lw->wq.type, lw->wq.data, w_rows(&lw->wq), d, panel, f.panel, pool);
        sd_matmul_w(k, kd, 0.0f, xn, L, lw->wk.type, lw->wk.data, w_rows(&lw->wk), d, panel, f.panel, pool);
        sd_matmul_w(v, kd, 0.0f, xn, L, lw->wv.type, lw->wv.data, w_rows(&lw->wv), d, panel, f.panel, pool);
        add_bias(q, &lw->bq, L, qd);
        add_bias(k, &lw->bk, L, kd);
        add_bias(v, &lw->bv, L, kd);
        sd_rope(q, L, H, hd, qd, rc, rs, neox, pool);
        sd_rope(k, L, Hkv, hd, kd, rc, rs, neox, pool);
        sd_attention(att, q, k, v, L, H, Hkv, hd, opts->causal, scores, pool);
        sd_matmul_w(x, d, 1.0f, att, L, lw->wo.type, lw->wo.data, d, qd, panel, f.panel, pool);

        /* feed-forward block: x += down(silu(gate(xn)) * up(xn)) */
        sd_rmsnorm(xn, x, lw->ffn_norm.data, L, d, hp->norm_eps, pool);
        sd_matmul_w(gate, F, 0.0f, xn, L, lw->w_gate.type, lw->w_gate.data, F, d, panel, f.panel, pool);
        sd_matmul_w(up, F, 0.0f, xn, L, lw->w_up.type, lw->w_up.data, F, d, panel, f.panel, pool);
        sd_swiglu(gate, up, L * F, pool);
        sd_matmul_w(x, d, 1.0f, gate, L, lw->w_down.type, lw->w_down.data, d, F, panel, f.panel, pool);
    }
    if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before the output head");
    }

    sd_rmsnorm(x, x, w->output_norm.data, L, d, hp->norm_eps, pool);
    if (hidden) memcpy(hidden, x, (size_t)(L * d) * sizeof(float));
    if (n_rows > 0) {
        /* Only the requested rows go through the (large) output head. */
        for (int64_t r = 0; r < n_rows; r++) memcpy(sel + r * d, x + (int64_t)rows[r] * d, (size_t)d * sizeof(float));
        sd_matmul_w(logits, V, 0.0f, sel, n_rows, w->output.type, w->output.data, V, d, panel, f.panel, pool);
    }
    sd_arena_restore(scratch, mark);
    return SMDIFF_OK;
}

void sd_embed_token(const sd_weights *w, int32_t id, float *out) {
    sd_dequant_rows(w->token_embd.type, w->token_embd.data, w->token_embd.cols, id, 1, out, NULL);
}

/* ---------------------------------------------------------- validation */

static int32_t check(const sd_weight *t, const char *name, int32_t layer, int64_t rows,
                     int64_t cols, int vector, sd_error *err) {
    char full[64];
    if (layer >= 0)
        snprintf(full, sizeof full, "blk.%d.%s", (int)layer, name);
    else
        snprintf(full, sizeof full, "%s", name);
    if (!t->data) return sd_fail(err, SMDIFF_E_FORMAT, "tensor %s is missing", full);
    if (t->rows != rows || t->cols != cols)
        return sd_fail(err, SMDIFF_E_FORMAT, "tensor %s has shape [%lld, %lld], expected [%lld, %lld]",
                       full, (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
    if (vector ? t->type != SD_GGML_F32 : !sd_ggml_is_supported(t->type) || !sd_ggml_row_size(t->type, cols))
        return sd_fail(err, SMDIFF_E_FORMAT, "tensor %s has unsupported type %u for its shape", full,
                       (unsigned)t->type);
    return SMDIFF_OK;
}

/* The tensors only mdlm has (and the ones it must not have). */
static int32_t validate_dit(const sd_weights *w, sd_error *err) {
    const sd_hparams *hp = &w->hp;
    const int64_t d = hp->n_embd, C = hp->n_cond, T = hp->n_freq;
    int32_t rc;
    if (C <= 0 || T <= 0 || T % 2 || hp->n_head_kv != hp->n_head)
        return sd_fail(err, SMDIFF_E_FORMAT, "mdlm: conditioning width %d and timestep features %d must be "
                       "positive (features even), kv heads %d equal to heads %d", (int)C, (int)T,
                       (int)hp->n_head_kv, (int)hp->n_head);
    if ((rc = check(&w->output_b, "output.bias", -1, 1, hp->n_vocab, 1, err))) return rc;
    if ((rc = check(&w->output_adaln, "output_adaln.weight", -1, 2 * d, C, 0, err))) return rc;
    if ((rc = check(&w->output_adaln_b, "output_adaln.bias", -1, 1, 2 * d, 1, err))) return rc;
    if ((rc = check(&w->time_fc1, "time_embd.fc1.weight", -1, C, T, 0, err))) return rc;
    if ((rc = check(&w->time_fc1_b, "time_embd.fc1.bias", -1, 1, C, 1, err))) return rc;
    if ((rc = check(&w->time_fc2, "time_embd.fc2.weight", -1, C, C, 0, err))) return rc;
    if ((rc = check(&w->time_fc2_b, "time_embd.fc2.bias", -1, 1, C, 1, err))) return rc;
    for (int32_t i = 0; i < hp->n_layer; i++) {
        const sd_layer_weights *l = &w->layers[i];
        if ((rc = check(&l->adaln, "adaln.weight", i, 6 * d, C, 0, err))) return rc;
        if ((rc = check(&l->adaln_b, "adaln.bias", i, 1, 6 * d, 1, err))) return rc;
        if ((rc = check(&l->b_up, "ffn_up.bias", i, 1, hp->n_ff, 1, err))) return rc;
        if ((rc = check(&l->b_down, "ffn_down.bias", i, 1, d, 1, err))) return rc;
        if (l->w_gate.data || l->bq.data || l->bk.data || l->bv.data)
            return sd_fail(err, SMDIFF_E_FORMAT, "blk.%d: mdlm has no ffn_gate or attention biases", (int)i);
    }
    return SMDIFF_OK;
}

int32_t sd_hparams_check(const sd_hparams *hp, sd_error *err) {
    if (hp->arch != SD_ARCH_DREAM && hp->arch != SD_ARCH_LLADA && hp->arch != SD_ARCH_MDLM)
        return sd_fail(err, SMDIFF_E_FORMAT, "unknown architecture id %d", (int)hp->arch);
    const struct { const char *name; int32_t v, lo, hi; } sizes[] = {
        {"vocabulary size", hp->n_vocab, 1, SD_HP_MAX_VOCAB}, {"embedding length", hp->n_embd, 2, SD_HP_MAX_EMBD},
        {"block count", hp->n_layer, 1, SD_HP_MAX_LAYERS},    {"head count", hp->n_head, 1, SD_HP_MAX_HEADS},
        {"kv head count", hp->n_head_kv, 1, SD_HP_MAX_HEADS}, {"feed-forward length", hp->n_ff, 1, SD_HP_MAX_FF},
        {"context length", hp->n_ctx, 1, SD_HP_MAX_CTX}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v < sizes[i].lo || sizes[i].v > sizes[i].hi)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s %d outside [%d, %d]", sizes[i].name, (int)sizes[i].v,
                           (int)sizes[i].lo, (int)sizes[i].hi);
    if (hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 2 || hp->n_head % hp->n_head_kv)
        return sd_fail(err, SMDIFF_E_FORMAT, "heads do not divide: embd %d, heads %d, kv heads %d "
                       "(need an even head size and heads a multiple of kv heads)",
                       (int)hp->n_embd, (int)hp->n_head, (int)hp->n_head_kv);
    const struct { const char *name; float v; } reals[] = {{"norm epsilon", hp->norm_eps},
                                                         {"RoPE base", hp->rope_base}};
    for (int i = 0; i < 2; i++)
        if (!(reals[i].v > 0) || reals[i].v > SD_HP_MAX_REAL)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s %g must be positive and at most %g", reals[i].name,
                           (double)reals[i].v, SD_HP_MAX_REAL);
    const struct { const char *name; int32_t id; } ids[] = {
        {"mask", hp->mask_id}, {"BOS", hp->bos_id}, {"EOS", hp->eos_id}, {"padding", hp->pad_id}};
    for (int i = 0; i < 4; i++)
        if (ids[i].id < -1 || ids[i].id >= hp->n_vocab)
            return sd_fail(err, SMDIFF_E_FORMAT, "%s token id %d outside the vocabulary (%d)", ids[i].name,
                           (int)ids[i].id, (int)hp->n_vocab);
    return SMDIFF_OK;
}

int32_t sd_weights_validate(const sd_weights *w, sd_error *err) {
    const sd_hparams *hp = &w->hp;
    int32_t rc = sd_hparams_check(hp, err);
    if (rc) return rc;
    int64_t d = hp->n_embd, hd = d / hp->n_head, qd = hp->n_head * hd, kd = hp->n_head_kv * hd;
    if ((rc = check(&w->token_embd, "token_embd.weight", -1, hp->n_vocab, d, 0, err))) return rc;
    if ((rc = check(&w->output_norm, "output_norm.weight", -1, 1, d, 1, err))) return rc;
    if ((rc = check(&w->output, "output.weight", -1, hp->n_vocab, d, 0, err))) return rc;
    if (!w->layers) return sd_fail(err, SMDIFF_E_FORMAT, "no layers");
    for (int32_t i = 0; i < hp->n_layer; i++) {
        const sd_layer_weights *l = &w->layers[i];
        if ((rc = check(&l->attn_norm, "attn_norm.weight", i, 1, d, 1, err))) return rc;
        if ((rc = check(&l->wq, "attn_q.weight", i, qd, d, 0, err))) return rc;
        if ((rc = check(&l->wk, "attn_k.weight", i, kd, d, 0, err))) return rc;
        if ((rc = check(&l->wv, "attn_v.weight", i, kd, d, 0, err))) return rc;
        if ((rc = check(&l->wo, "attn_output.weight", i, d, qd, 0, err))) return rc;
        if ((rc = check(&l->ffn_norm, "ffn_norm.weight", i, 1, d, 1, err))) return rc;
        if (hp->arch != SD_ARCH_MDLM && (rc = check(&l->w_gate, "ffn_gate.weight", i, hp->n_ff, d, 0, err)))
            return rc;
        if ((rc = check(&l->w_up, "ffn_up.weight", i, hp->n_ff, d, 0, err))) return rc;
        if ((rc = check(&l->w_down, "ffn_down.weight", i, d, hp->n_ff, 0, err))) return rc;
        /* Biases are optional (dream has them, llada not), but if one is
         * present it must fit. */
        if (l->bq.data && (rc = check(&l->bq, "attn_q.bias", i, 1, qd, 1, err))) return rc;
        if (l->bk.data && (rc = check(&l->bk, "attn_k.bias", i, 1, kd, 1, err))) return rc;
        if (l->bv.data && (rc = check(&l->bv, "attn_v.bias", i, 1, kd, 1, err))) return rc;
    }
    return hp->arch == SD_ARCH_MDLM ? validate_dit(w, err) : SMDIFF_OK;
}

void sd_weights_n_params(const sd_weights *w, int64_t *total, int64_t *non_embedding) {
    int64_t ne = w->output_norm.cols;
    for (int32_t i = 0; i < w->hp.n_layer; i++) {
        const sd_layer_weights *l = &w->layers[i];
        const sd_weight *t[12] = {&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->bq, &l->bk,
                                  &l->bv, &l->wo, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down};
        for (int j = 0; j < 12; j++)
            if (t[j]->data) ne += t[j]->rows * t[j]->cols;
    }
    /* mdlm: the output bias and the conditioning path (timestep MLP and
     * adaLN, evaluated once per call, not per position) count only in the
     * total. */
    int64_t cond = 0;
    if (w->hp.arch == SD_ARCH_MDLM) {
        const sd_weight *t[7] = {&w->time_fc1, &w->time_fc1_b, &w->time_fc2, &w->time_fc2_b,
                                 &w->output_adaln, &w->output_adaln_b, &w->output_b};
        for (int j = 0; j < 7; j++) cond += t[j]->rows * t[j]->cols;
        for (int32_t i = 0; i < w->hp.n_layer; i++) {
            const sd_layer_weights *l = &w->layers[i];
            cond += l->adaln.rows * l->adaln.cols + l->adaln_b.cols;
            ne += l->b_up.cols + l->b_down.cols;
        }
    }
    if (non_embedding) *non_embedding = ne;
    if (total) *total = ne + cond + w->token_embd.rows * w->token_embd.cols + w->output.rows * w->output.cols;
}

double sd_forward_flops(const sd_weights *w, int64_t L, int64_t n_rows) {
    int64_t ne;
    sd_weights_n_params(w, NULL, &ne);
    double Ld = (double)L;
    return 2.0 * (double)ne * Ld + 4.0 * Ld * Ld * w->hp.n_embd * w->hp.n_layer +
           2.0 * (double)w->hp.n_embd * w->hp.n_vocab * (double)n_rows;
}
