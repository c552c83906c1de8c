/* qwen05b.h -- a Qwen2.5-0.5B-shaped `dream` model with random weights,
 * built in memory for the benchmarks (bench_forward, bench_generate):
 * 24 layers, d 896, 14 heads (hd 64), 2 KV heads, ffn 4864, vocab 151936.
 *
 * Header-only: each benchmark is its own program. Large tensors tile one
 * block of random values (the timings do not depend on the values, and
 * drawing 630 M of them one by one would take longer than a benchmark). */
#ifndef SMDIFF_BENCH_QWEN05B_H
#define SMDIFF_BENCH_QWEN05B_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
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

/* rows x cols of type (SD_GGML_F32 or SD_GGML_F16): offset + scale * u, u in [-1, 1). */
static sd_weight bench_tensor(bench_model *bm, int64_t rows, int64_t cols, uint32_t type, float scale,
                              float offset) {
    sd_weight w = {NULL, type, rows, cols};
    size_t n = (size_t)(rows * cols), esz = type == SD_GGML_F16 ? 2 : 4, bytes = n * esz;
    unsigned char *p = sd_malloc(bytes);
    if (!p) {
        fprintf(stderr, "out of memory for weights\n");
        exit(1);
    }
    size_t fresh = n < BENCH_TILE ? n : BENCH_TILE;
    float buf[4096];
    for (size_t i = 0; i < fresh; i += 4096) {
        size_t m = fresh - i < 4096 ? fresh - i : 4096;
        for (size_t k = 0; k < m; k++) buf[k] = offset + bench_frand(scale);
        sd_ggml_from_f32(type, buf, p + i * esz, (int64_t)m);
    }
    for (size_t i = fresh; i < n; i += fresh) memcpy(p + i * esz, p, esz * (n - i < fresh ? n - i : fresh));
    bm->blobs[bm->n++] = p;
    bm->bytes += bytes;
    w.data = p;
    return w;
}

/* Matrices in type; norms and biases F32. */
static void bench_model_build(bench_model *bm, uint32_t type) {
    memset(bm, 0, sizeof *bm);
    sd_hparams *hp = &bm->w.hp;
    hp->arch = SD_ARCH_DREAM;
    hp->n_vocab = 151936, hp->n_embd = 896, hp->n_layer = 24, hp->n_head = 14, hp->n_head_kv = 2;
    hp->n_ff = 4864, hp->n_ctx = 32768, hp->norm_eps = 1e-6f, hp->rope_base = 1e6f;
    hp->shift_logits = 1, hp->mask_id = 151666;
    hp->bos_id = hp->eos_id = hp->pad_id = -1;
    int64_t d = 896, kd = 128, F = 4864, V = 151936;
    float s = 0.02f; /* keeps activations O(1) through 24 random layers */
    bm->w.layers = sd_calloc(24, sizeof(sd_layer_weights));
    bm->blobs[bm->n++] = bm->w.layers;
    bm->w.token_embd = bench_tensor(bm, V, d, type, 1.0f, 0);
    for (int i = 0; i < 24; i++) {
        sd_layer_weights *l = &bm->w.layers[i];
        l->attn_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->wq = bench_tensor(bm, d, d, type, s, 0);
        l->wk = bench_tensor(bm, kd, d, type, s, 0);
        l->wv = bench_tensor(bm, kd, d, type, s, 0);
        l->bq = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 0);
        l->bk = bench_tensor(bm, 1, kd, SD_GGML_F32, 0.1f, 0);
        l->bv = bench_tensor(bm, 1, kd, SD_GGML_F32, 0.1f, 0);
        l->wo = bench_tensor(bm, d, d, type, s, 0);
        l->ffn_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->w_gate = bench_tensor(bm, F, d, type, s, 0);
        l->w_up = bench_tensor(bm, F, d, type, s, 0);
        l->w_down = bench_tensor(bm, d, F, type, s, 0);
    }
    bm->w.output_norm = bench_tensor(bm, 1, d, SD_GGML_F32, 0.1f, 1.0f);
    bm->w.output = bench_tensor(bm, V, d, type, s, 0);
}

static void bench_model_release(bench_model *bm) {
    for (int i = 0; i < bm->n; i++) sd_free(bm->blobs[i]);
    bm->n = 0;
}

#endif
