/* test_train_vs_forward.c -- the training forward (lib/train) and the
 * inference forward (sd_forward, lib/nn) are two implementations of one
 * model; a model trained here is run there. On the same F32 weights (the
 * trainable parameters viewed as sd_weights, no copy) and the same input
 * embeddings they must give the same logits: dream (biases, NEOX RoPE),
 * llada with permuted (adjacent-pair) and unpermuted RoPE, mdlm (MDLM's
 * DiT: adaLN conditioning, LayerNorm, GELU, biases; its mask logit pushed
 * down in both), bidirectional and causal, and with soft-masked input rows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "train/model_train.h"

static void run(sd_arch arch, int permuted, int causal, int soft) {
    enum { L = 11, V = 40, K = 3 };
    sd_hparams hp = {0};
    hp.arch = arch;
    hp.n_vocab = V, hp.n_embd = 32, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 48;
    hp.n_ctx = 64, hp.norm_eps = 1e-6f, hp.rope_base = 500.0f, hp.mask_id = V - 1;
    hp.rope_permuted = permuted;
    hp.shift_logits = arch == SD_ARCH_DREAM;
    if (arch == SD_ARCH_MDLM) {
        hp.n_head_kv = hp.n_head, hp.n_ff = 4 * hp.n_embd, hp.n_cond = 8, hp.n_freq = 256;
        hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f;
        hp.time_cond = permuted; /* mdlm: "permuted" asks for time conditioning */
    }
    sd_tmodel *m = NULL;
    assert_int_equal(sd_tmodel_create(&hp, 1, L, 0, &m, NULL), 0);
    sd_rng r;
    sd_rng_init(&r, 31 + (uint64_t)arch * 7 + (uint64_t)permuted, 2);
    sd_tmodel_init_random(m, &r, 0.25f, 0.7, 2.0, -2.0);
    for (int32_t i = 0; i < m->n_tensors; i++) /* biases and norms away from 0 / 1 */
        if (m->tensors[i].group == SD_TGROUP_NO_DECAY)
            for (int64_t j = 0; j < m->tensors[i].rows * m->tensors[i].cols; j++)
                m->params[m->tensors[i].offset + j] += 0.2f * (float)(sd_rng_uniform(&r) - 0.5);

    int32_t ids[L], rows[L], srows[L], sids[L * K];
    float spi[L * K], sH[L];
    int64_t ns = 0;
    for (int p = 0; p < L; p++) {
        ids[p] = p % 3 == 1 ? hp.mask_id : (int32_t)sd_rng_below(&r, V - 1);
        rows[p] = p;
        if (soft && ids[p] == hp.mask_id) {
            srows[ns] = p;
            for (int i = 0; i < K; i++) {
                sids[ns * K + i] = (int32_t)sd_rng_below(&r, V - 1);
                spi[ns * K + i] = 1.0f / K;
            }
            sH[ns++] = (float)(sd_rng_uniform(&r) * 3);
        }
    }
    const float t_seq[1] = {0.6f};
    sd_tbatch b = {1, L, ids, causal, ns, K, srows, sids, spi, sH, L, rows, NULL, NULL, t_seq, 0};
    assert_int_equal(sd_tmodel_forward(m, &b, NULL), 0);

    sd_layer_weights layers[2];
    sd_weights w;
    sd_tmodel_as_weights(m, &w, layers);
    sd_error err = {0};
    assert_int_equal(sd_weights_validate(&w, &err), 0);
    sd_arena arena;
    assert_int_equal(sd_arena_init(&arena, sd_forward_scratch_bytes(&hp, L, L, 1), 0), 0);
    float *logits = malloc(sizeof(float) * L * V);
    sd_forward_opts fo = {0};
    fo.causal = causal;
    /* the input embeddings the training forward built (soft rows mixed) */
    /* the noise level MDLM's log-linear schedule gives t (ignored without time conditioning) */
    float sigma = (float)-log1p(-(1.0 - 1e-3) * t_seq[0]);
    assert_int_equal(sd_forward_sigma(&w, sigma, m->a.layers[0].x, L, rows, L, logits, NULL, &fo, &arena, &err), 0);
    double worst = 0, scale = 0;
    for (int i = 0; i < L * V; i++) {
        if (arch == SD_ARCH_MDLM && i % V == hp.mask_id) { /* -1e6 in both: spacing 0.0625 there */
            if (!(logits[i] < -9e5 && fabs(logits[i] - m->a.logits[i]) <= 0.125)) fail_msg("mask logit %.9g vs %.9g", logits[i], m->a.logits[i]);
            continue;
        }
        worst = fmax(worst, fabs(logits[i] - m->a.logits[i]));
        scale = fmax(scale, fabs(m->a.logits[i]));
    }
    printf("  %s%s%s%s: max |logit difference| %.3g (logits up to %.3g)\n",
           arch == SD_ARCH_DREAM ? "dream" : arch == SD_ARCH_LLADA ? "llada" : "mdlm",
           permuted ? (arch == SD_ARCH_MDLM ? " time-conditioned" : " permuted") : "",
           causal ? " causal" : "", soft ? " soft rows" : "", worst, scale);
    assert_true(worst <= 1e-4 * fmax(1.0, scale));
    free(logits);
    sd_arena_destroy(&arena);
    sd_tmodel_free(m);
}

static void test_dream(void **state) {
    (void)state;
    run(SD_ARCH_DREAM, 0, 0, 0);
    run(SD_ARCH_DREAM, 0, 0, 1);
    run(SD_ARCH_DREAM, 0, 1, 0);
}

static void test_llada(void **state) {
    (void)state;
    run(SD_ARCH_LLADA, 1, 0, 1);
    run(SD_ARCH_LLADA, 0, 0, 0);
    run(SD_ARCH_LLADA, 1, 1, 0);
}

static void test_mdlm(void **state) {
    (void)state;
    run(SD_ARCH_MDLM, 0, 0, 0);
    run(SD_ARCH_MDLM, 0, 0, 1);
    run(SD_ARCH_MDLM, 0, 1, 0);
    run(SD_ARCH_MDLM, 1, 0, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dream),
        cmocka_unit_test(test_llada),
        cmocka_unit_test(test_mdlm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
