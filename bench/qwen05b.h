/* qwen05b.h -- a Qwen2.5-0.5B-shaped `dream` model with random weights,
 * built in memory for the benchmarks (bench_forward, bench_generate):
 * 24 layers, d 896, 14 heads (hd 64), 2 KV heads, ffn 4864, vocab 151936.
 *
 * Header-only: each benchmark is its own program. Large tensors tile one
 * block of random values (the timings do not depend on the values, and
 * drawing 630 M of them one by one would take longer than a benchmark).
 * Matrices may be in any file type's types (bench_model_build_ftype). */
#ifndef SMDIFF_BENCH_QWEN05B_H
#define SMDIFF_BENCH_QWEN05B_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "convert/quantize.h"
#include "io/gguf.h"
#include "nn/transformer.h"

typedef struct bench_model {
    sd_weights w;
    void *blobs[512];
    int n;
    size_t bytes;  /* weight bytes */
} bench_model;

static uint64_t bench_rng_state = 0x9E3779B97F4A7C15ull;

/* uniform in [-a, a) (xorshift64; reproducible, not statistical quality) */
static inline float bench_frand(float a) {
    bench_rng_state ^= bench_rng_state << 13;
    bench_rng_state ^= bench_rng_state >> 7;
    bench_rng_state ^= bench_rng_state << 17;
    return ((float)((uint32_t)(bench_rng_state >> 32) >> 8) / 8388608.0f - 1.0f) * a;
}

#define BENCH_TILE ((size_t)1 << 18)
#define BENCH_QTILE ((size_t)1 << 16) /* block formats: fewer values to quantise, whole blocks */

/* rows x cols of any supported type: offset + scale * u, u in [-1, 1),
 * converted from f32 (block formats: core/quant.h's quantisers) one tile
 * at a time and the tile's bytes repeated. */
static inline sd_weight bench_tensor(bench_model *bm, int64_t rows, int64_t cols, uint32_t type, float scale,
                              float offset) {
    sd_weight w = {NULL, type, rows, cols};
    size_t n = (size_t)(rows * cols), bytes = (size_t)sd_ggml_type_size(type, n);
    unsigned char *p = sd_malloc(bytes ? bytes : 1);
    if (!p || !bytes) {
        fprintf(stderr, "out of memory for weights (or %s cannot hold rows of %lld)\n", sd_ggml_type_name(type),
                (long long)cols);
        exit(1);
    }
    size_t tile = type == SD_GGML_F32 || type == SD_GGML_F16 || type == SD_GGML_BF16 ? BENCH_TILE : BENCH_QTILE;
    size_t fresh = n < tile ? n : tile, blk = sd_ggml_block_size(type);
    fresh -= fresh % blk;
    float *buf = sd_malloc(sizeof(float) * fresh);
    for (size_t k = 0; k < fresh; k++) buf[k] = offset + bench_frand(scale);
    sd_ggml_from_f32(type, buf, p, (int64_t)fresh);
    sd_free(buf);
    size_t tb = (size_t)sd_ggml_type_size(type, fresh);
    for (size_t i = tb; i < bytes; i += tb) memcpy(p + i, p, bytes - i < tb ? bytes - i : tb);
    bm->blobs[bm->n++] = p;
    bm->bytes += bytes;
    w.data = p;
    return w;
}

/* Matrices in the types of a file type of convert/quantize.h ("f32",
 * "q4_k_m", ...: its recipe and fallbacks, as smdiff quantize would store
 * them); norms and biases F32. */
static inline void bench_model_build_ftype(bench_model *bm, const char *ftype) {
    const sd_qftype *f = sd_qftype_find(ftype);
    if (!f) {
        fprintf(stderr, "unknown file type %s\n", ftype);
        exit(1);
    }
    memset(bm, 0, sizeof *bm);
    sd_hparams *hp = &bm->w.hp;
    hp->arch = SD_ARCH_DREAM;
    hp->n_vocab = 151936, hp->n_embd = 896, hp->n_layer = 24, hp->n_head = 14, hp->n_head_kv = 2;
    hp->n_ff = 4864, hp->n_ctx = 32768, hp->norm_eps = 1e-6f, hp->rope_base = 1e6f;
    hp->shift_logits = 1, hp->mask_id = 151666;
    hp->bos_id = hp->eos_id = hp->pad_id = -1;
    int64_t d = 896, kd = 128, F = 4864, V = 151936;
    float s = 0.02f; /* keeps activations O(1) through 24 random layers */
    sd_qmodel_info info = {24, 7, 0};
#define BT(name, rows, cols) sd_qftype_tensor_type(f, 0, name, 2, (uint64_t)(cols), SD_GGML_F32, &info)
    char nm[64];
    bm->w.layers = sd_calloc(24, sizeof(sd_layer_weights));
    bm->blobs[bm->n++] = bm->w.layers;
    bm->w.token_embd = bench_tensor(bm, V, d, BT("token_embd.weight", V, d), 1.0f, 0);
    for (int i = 0; i < 24; i++) {
        sd_layer_weights *l = &bm->w.layers[i];
#define LT(suffix, rows, cols) (snprintf(nm, sizeof nm, "blk.%d." suffix, i), BT(nm, rows, cols))
        l->attn_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->wq = bench_tensor(bm, d, d, LT("attn_q.weight", d, d), s, 0);
        l->wk = bench_tensor(bm, kd, d, LT("attn_k.weight", kd, d), s, 0);
        l->wv = bench_tensor(bm, kd, d, LT("attn_v.weight", kd, d), s, 0);
        l->bq = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 0);
        l->bk = bench_tensor(bm, 1, kd, SD_GGML_F32, 0.1f, 0);
        l->bv = bench_tensor(bm, 1, kd, SD_GGML_F32, 0.1f, 0);
        l->wo = bench_tensor(bm, d, d, LT("attn_output.weight", d, d), s, 0);
        l->ffn_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->w_gate = bench_tensor(bm, F, d, LT("ffn_gate.weight", F, d), s, 0);
        l->w_up = bench_tensor(bm, F, d, LT("ffn_up.weight", F, d), s, 0);
        l->w_down = bench_tensor(bm, d, F, LT("ffn_down.weight", d, F), s, 0);
#undef LT
    }
    bm->w.output_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
    bm->w.output = bench_tensor(bm, V, d, BT("output.weight", V, d), s, 0);
#undef BT
}

/* Matrices in type (F32, F16, BF16: one type throughout); norms and biases F32. */
static inline void bench_model_build(bench_model *bm, uint32_t type) {
    bench_model_build_ftype(bm, type == SD_GGML_F16 ? "f16" : type == SD_GGML_BF16 ? "bf16" : "f32");
}

static inline void bench_model_release(bench_model *bm) {
    for (int i = 0; i < bm->n; i++) sd_free(bm->blobs[i]);
    bm->n = 0;
}

#endif
