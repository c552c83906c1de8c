/* make_model.c -- write a GGUF model of a real model's shape with random
 * weights in any file type, without ever holding its F32 weights: each
 * tensor is a seeded random tile, quantised once (smdiff quantize's
 * recipe and row quantiser) and repeated to fill the tensor. For the
 * benchmarks of large shapes (docs/PERFORMANCE.md): the timings and the
 * memory do not depend on the values. A benchmark tool, not installed.
 *
 *   make_model OUT.gguf --shape dream-7b|qwen2.5-0.5b --type q4_k_m
 *              [--tokenizer DIR] [--threads N] [--seed S]
 *
 * --tokenizer: a Hugging Face tokenizer folder (tests/data/tokenizers/
 * dream-qwen2.5) whose vocabulary is written as tokenizer.ggml.*, so that
 * other programs (llama.cpp's diffusion tool) load the file too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "convert/quantize.h"
#include "core/alloc.h"
#include "core/pool.h"
#include "io/gguf.h"

typedef struct {
    const char *name;
    int64_t layers, d, heads, kv_heads, ff, vocab, ctx;
} shape;

/* Dream-v0-7B (Qwen2.5-7B's block) and Qwen2.5-0.5B, as their config.json give them. */
static const shape k_shapes[] = {
    {"dream-7b", 28, 3584, 28, 4, 18944, 152064, 131072},
    {"qwen2.5-0.5b", 24, 896, 14, 2, 4864, 151936, 32768},
};

#define TILE ((uint64_t)1 << 18) /* values drawn per tensor; whole blocks of every type */

typedef struct {
    uint32_t type;
    uint64_t rows, cols;
    float scale, offset;
    uint64_t seed;
    sd_pool *pool;
} gen_tensor;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    const gen_tensor *g;
    uint64_t n;
} tile_src;

/* Row r of the tile as f32: uniform in offset +- scale from the tensor's seed. */
static void tile_row(const void *user, uint64_t r, float *out) {
    const tile_src *t = user;
    uint64_t s = t->g->seed + r * 0x100000001B3ull;
    for (uint64_t c = 0; c < t->n; c++)
        out[c] = t->g->offset + t->g->scale * ((float)(splitmix(&s) >> 40) / 8388608.0f - 1.0f);
}

static int32_t fill(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err) {
    const gen_tensor *g = user;
    uint64_t nel = g->rows * g->cols, blk = sd_ggml_block_size(g->type);
    uint64_t tile = nel < TILE ? nel : TILE;
    tile -= tile % blk;
    /* the tile as one row of `tile` values (whole blocks), quantised once */
    tile_src src = {g, tile};
    int32_t rc = sd_quantize_rows(g->type, 1, tile, tile_row, &src, dst, g->pool, NULL, err);
    if (rc) return rc;
    uint64_t tb = sd_ggml_type_size(g->type, tile);
    for (uint64_t i = tb; i < n_bytes; i += tb) memcpy((char *)dst + i, dst, n_bytes - i < tb ? n_bytes - i : tb);
    if (isatty(2)) fprintf(stderr, "\r%-32s %-6s", name, sd_ggml_type_name(g->type));
    return SMDIFF_OK;
}

static void usage(void) {
    fprintf(stderr, "usage: make_model OUT.gguf --shape dream-7b|qwen2.5-0.5b --type TYPE [--tokenizer DIR] "
                    "[--threads N] [--seed S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *out = NULL, *shape_name = NULL, *type = NULL, *tok = NULL;
    int threads = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_name = argv[++i];
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) type = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !out) out = argv[i];
        else usage();
    }
    const shape *sh = NULL;
    for (size_t i = 0; shape_name && i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (!strcmp(shape_name, k_shapes[i].name)) sh = &k_shapes[i];
    const sd_qftype *f = sd_qftype_find(type);
    if (!out || !sh || !f) usage();

    sd_error err = {0};
    sd_gguf_writer *w = NULL;
    sd_pool *pool = NULL;
    if (sd_gguf_writer_create(&w, &err) || sd_pool_create(threads > 0 ? threads : sd_cpu_count(), &pool, &err)) {
        fprintf(stderr, "make_model: %s\n", err.msg);
        return 1;
    }
    /* the keys convert.c writes for a Dream checkpoint */
    int bad = sd_gguf_set_str(w, "general.architecture", "dream") || sd_gguf_set_str(w, "general.type", "model") ||
              sd_gguf_set_str(w, "general.name", sh->name) ||
              sd_gguf_set_u32(w, "dream.block_count", (uint32_t)sh->layers) ||
              sd_gguf_set_u32(w, "dream.context_length", (uint32_t)sh->ctx) ||
              sd_gguf_set_u32(w, "dream.embedding_length", (uint32_t)sh->d) ||
              sd_gguf_set_u32(w, "dream.feed_forward_length", (uint32_t)sh->ff) ||
              sd_gguf_set_u32(w, "dream.attention.head_count", (uint32_t)sh->heads) ||
              sd_gguf_set_u32(w, "dream.attention.head_count_kv", (uint32_t)sh->kv_heads) ||
              sd_gguf_set_f32(w, "dream.rope.freq_base", 1e6f) ||
              sd_gguf_set_f32(w, "dream.attention.layer_norm_rms_epsilon", 1e-6f) ||
              sd_gguf_set_u32(w, "general.file_type", f->file_type) ||
              sd_gguf_set_bool(w, "dream.attention.causal", 0) || sd_gguf_set_bool(w, "diffusion.shift_logits", 1) ||
              sd_gguf_set_u32(w, "general.quantization_version", 2);
    if (bad) {
        fprintf(stderr, "make_model: %s\n", sd_gguf_writer_error(w)->msg);
        return 1;
    }
    if (tok && sd_convert_vocab(tok, (uint64_t)sh->vocab, "qwen2", -1, w, &err)) {
        fprintf(stderr, "make_model: %s\n", err.msg);
        return 1;
    }
    if (sd_gguf_set_u32(w, "tokenizer.ggml.mask_token_id", (uint32_t)(sh->vocab > 151666 ? 151666 : sh->vocab - 1))) {
        fprintf(stderr, "make_model: %s\n", sd_gguf_writer_error(w)->msg);
        return 1;
    }

    int64_t hd = sh->d / sh->heads, qd = sh->heads * hd, kd = sh->kv_heads * hd;
    sd_qmodel_info info = {(int32_t)sh->layers, (int32_t)(sh->heads / sh->kv_heads), 0};
    gen_tensor *g = sd_calloc((size_t)(sh->layers * 12 + 3), sizeof *g);
    int n = 0;
    float s = 0.02f;
#define ADD(NAME, ROWS, COLS, SCALE, OFFSET)                                                                     \
    do {                                                                                                         \
        uint64_t ne_[2] = {(uint64_t)(COLS), (uint64_t)(ROWS)};                                                  \
        uint32_t nd_ = (ROWS) == 1 ? 1 : 2;                                                                      \
        g[n] = (gen_tensor){sd_qftype_tensor_type(f, 0, NAME, nd_, ne_[0], SD_GGML_F32, &info), (uint64_t)(ROWS), \
                            (uint64_t)(COLS), SCALE, OFFSET, seed * 1000003u + (uint64_t)n, pool};               \
        if (sd_gguf_add_tensor_fill(w, NAME, nd_, ne_, g[n].type, fill, &g[n])) {                                \
            fprintf(stderr, "make_model: %s\n", sd_gguf_writer_error(w)->msg);                                   \
            return 1;                                                                                            \
        }                                                                                                        \
        n++;                                                                                                     \
    } while (0)
    char nm[96];
    ADD("token_embd.weight", sh->vocab, sh->d, 1.0f, 0.0f);
    for (int64_t i = 0; i < sh->layers; i++) {
#define L(SUFFIX) (snprintf(nm, sizeof nm, "blk.%lld." SUFFIX, (long long)i), nm)
        ADD(L("attn_norm.weight"), 1, sh->d, 0.1f, 1.0f);
        ADD(L("attn_q.weight"), qd, sh->d, s, 0.0f);
        ADD(L("attn_q.bias"), 1, qd, 0.1f, 0.0f);
        ADD(L("attn_k.weight"), kd, sh->d, s, 0.0f);
        ADD(L("attn_k.bias"), 1, kd, 0.1f, 0.0f);
        ADD(L("attn_v.weight"), kd, sh->d, s, 0.0f);
        ADD(L("attn_v.bias"), 1, kd, 0.1f, 0.0f);
        ADD(L("attn_output.weight"), sh->d, qd, s, 0.0f);
        ADD(L("ffn_norm.weight"), 1, sh->d, 0.1f, 1.0f);
        ADD(L("ffn_gate.weight"), sh->ff, sh->d, s, 0.0f);
        ADD(L("ffn_up.weight"), sh->ff, sh->d, s, 0.0f);
        ADD(L("ffn_down.weight"), sh->d, sh->ff, s, 0.0f);
#undef L
    }
    ADD("output_norm.weight", 1, sh->d, 0.1f, 1.0f);
    ADD("output.weight", sh->vocab, sh->d, s, 0.0f);
#undef ADD
    if (sd_gguf_write(w, out, &err)) {
        fprintf(stderr, "\nmake_model: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "\nwrote %s (%s, %s)\n", out, sh->name, f->name);
    sd_free(g);
    sd_gguf_writer_free(w);
    sd_pool_free(pool);
    return 0;
}
