/* test_train_grad.c -- every backward of lib/train/ops.c, and the gradient
 * of the whole trainable model (dream and llada blocks, soft-mask input
 * embedding and the three raw SM parameters), against central finite
 * differences of DOUBLE-precision reference forwards written here,
 * independently of the code under test.
 *
 * Method: for an op y = f(x) we pick fixed random cotangents c and check the
 * float backward's dJ/dx for J = sum_i c_i y_i against
 *     (J(x + h e_i) - J(x - h e_i)) / 2h      computed in double, h = 1e-5.
 * Tolerance: the FD value has truncation error ~h^2 |J'''| ~ 1e-10 and
 * rounding ~1e-16/h ~ 1e-11, so the error is the float32 backward's own:
 * sums of at most a few hundred O(1) terms, ~1e-6 relative. We accept
 *     |analytic - fd| <= 2e-4 * |fd| + 2e-5 * max_i |fd_i|   (per tensor)
 * (measured worst: about 5% of that limit)
 * which any wrong formula (a missing term, a sign, a transposition) exceeds
 * by orders of magnitude; test_fd_detects_a_wrong_gradient shows it does.
 * Each double forward is also compared with the float forward. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "nn/ops.h"
#include "train/model_train.h"
#include "train/ops.h"

#define FD_H 1e-5
#define RTOL 2e-4
#define ATOL_FRAC 2e-5

/* ------------------------------------------------------------ helpers */

static sd_rng g_rng;

static double urand(double lo, double hi) { return lo + (hi - lo) * sd_rng_uniform(&g_rng); }

static void fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)urand(lo, hi);
}

static double *to_double(const float *x, int64_t n) {
    double *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static double dsig(double x) { return 1.0 / (1.0 + exp(-x)); }
static double dsoftplus(double x) { return x > 30 ? x : log1p(exp(x)); }

/* J(ctx) in double after the caller's perturbation */
typedef double (*objective_fn)(void *ctx);

/* Compare analytic[n] with central FD of J wrt x[n] (double, perturbed in
 * place). Returns the number of failing entries and prints the worst. */
static int fd_check(const char *what, double *x, const float *analytic, int64_t n, objective_fn J,
                    void *ctx, int64_t max_checks) {
    double *fd = malloc((size_t)n * sizeof *fd);
    int64_t stride = (max_checks > 0 && n > max_checks) ? n / max_checks : 1;
    double scale = 0.0;
    for (int64_t i = 0; i < n; i += stride) {
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double jp = J(ctx);
        x[i] = x0 - FD_H;
        double jm = J(ctx);
        x[i] = x0;
        fd[i] = (jp - jm) / (2 * FD_H);
        if (fabs(fd[i]) > scale) scale = fabs(fd[i]);
    }
    int bad = 0;
    double worst = 0.0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < n; i += stride) {
        double err = fabs(analytic[i] - fd[i]);
        double lim = RTOL * fabs(fd[i]) + ATOL_FRAC * scale + 1e-12;
        if (err > lim) bad++;
        if (err / lim > worst) {
            worst = err / lim;
            worst_i = i;
        }
    }
    if (bad || getenv("SD_TEST_VERBOSE"))
        printf("  %-28s n=%-6lld bad=%d worst err/limit %.3g at %lld (analytic %.8g fd %.8g, "
               "scale %.3g)\n",
               what, (long long)n, bad, worst, (long long)worst_i, analytic[worst_i], fd[worst_i],
               scale);
    free(fd);
    return bad;
}

static double cdot(const double *c, const double *y, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += c[i] * y[i];
    return s;
}

static void assert_close_f(const float *a, const double *b, int64_t n, double rtol, const char *what) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > rtol * (fabs(b[i]) + scale)) {
            printf("  %s: forward mismatch at %lld: %.8g vs %.8g\n", what, (long long)i, a[i], b[i]);
            fail();
        }
    }
}

/* ------------------------------------------------ double reference forwards */

static void dref_rmsnorm(double *out, const double *x, const double *w, int64_t N, int64_t d,
                         double eps) {
    for (int64_t n = 0; n < N; n++) {
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += x[n * d + j] * x[n * d + j];
        double r = 1.0 / sqrt(ss / d + eps);
        for (int64_t j = 0; j < d; j++) out[n * d + j] = x[n * d + j] * r * w[j];
    }
}

static void dref_linear(double *out, const double *x, const double *W, const double *b, int64_t N,
                        int64_t I, int64_t O) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            double s = b ? b[o] : 0.0;
            for (int64_t i = 0; i < I; i++) s += x[n * I + i] * W[o * I + i];
            out[n * O + o] = s;
        }
}

/* x [B,L,nh,hd] in place; NEOX pairs (i, i+hd/2), ADJACENT (2i, 2i+1) */
static void dref_rope(double *x, int64_t B, int64_t L, int64_t nh, int64_t hd, double base, int mode) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t h = 0; h < nh; h++) {
                double *v = x + ((b * L + l) * nh + h) * hd;
                for (int64_t i = 0; i < hd / 2; i++) {
                    double th = l * pow(base, -2.0 * i / hd);
                    int64_t i0 = mode == SD_ROPE_NEOX ? i : 2 * i;
                    int64_t i1 = mode == SD_ROPE_NEOX ? i + hd / 2 : 2 * i + 1;
                    double a = v[i0], c = v[i1];
                    v[i0] = a * cos(th) - c * sin(th);
                    v[i1] = c * cos(th) + a * sin(th);
                }
            }
}

static void dref_attention(double *out, const double *q, const double *k, const double *v,
                           int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal) {
    double *s = malloc((size_t)L * sizeof *s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t g = h / (H / Hkv);
            for (int64_t i = 0; i < L; i++) {
                const double *qi = q + ((b * L + i) * H + h) * hd;
                int64_t n = causal ? i + 1 : L;
                double mx = -1e300, z = 0;
                for (int64_t j = 0; j < n; j++) {
                    const double *kj = k + ((b * L + j) * Hkv + g) * hd;
                    double dot = 0;
                    for (int64_t e = 0; e < hd; e++) dot += qi[e] * kj[e];
                    s[j] = dot / sqrt((double)hd);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < n; j++) z += (s[j] = exp(s[j] - mx));
                double *o = out + ((b * L + i) * H + h) * hd;
                for (int64_t e = 0; e < hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < n; j++) acc += s[j] / z * v[((b * L + j) * Hkv + g) * hd + e];
                    o[e] = acc;
                }
            }
        }
    free(s);
}

static void dref_swiglu(double *h, const double *g, const double *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = g[i] * dsig(g[i]) * u[i];
}

static double dref_xent(const double *x, int64_t V, int32_t t) {
    double mx = x[0], z = 0;
    for (int64_t j = 1; j < V; j++) mx = fmax(mx, x[j]);
    for (int64_t j = 0; j < V; j++) z += exp(x[j] - mx);
    return mx + log(z) - x[t];
}

static double dref_lambda(double H, const double raw[3]) {
    double ws = dsig(raw[0]), wa = dsoftplus(raw[1]), wb = -dsoftplus(raw[2]);
    return ws * dsig(wa * (-H - wb));
}

/* ------------------------------------------------------------- op tests */

typedef struct embed_ctx {
    int64_t N, d, V, S;
    int32_t k, mask;
    const int32_t *ids, *rows, *sids;
    const double *pi, *H, *c;
    double *E, *raw, *y;
} embed_ctx;

static double embed_J(void *vctx) {
    embed_ctx *x = vctx;
    for (int64_t n = 0; n < x->N; n++)
        for (int64_t j = 0; j < x->d; j++) x->y[n * x->d + j] = x->E[x->ids[n] * x->d + j];
    for (int64_t s = 0; s < x->S; s++) {
        double lam = dref_lambda(x->H[s], x->raw);
        double *o = x->y + x->rows[s] * x->d;
        for (int64_t j = 0; j < x->d; j++) {
            double mix = 0;
            for (int32_t i = 0; i < x->k; i++) mix += x->pi[s * x->k + i] * x->E[x->sids[s * x->k + i] * x->d + j];
            o[j] = (1 - lam) * x->E[x->mask * x->d + j] + lam * mix;
        }
    }
    return cdot(x->c, x->y, x->N * x->d);
}

static void test_embed_softmix_lambda(void **state) {
    (void)state;
    enum { N = 10, d = 6, V = 12, S = 4, k = 3 };
    int32_t ids[N], rows[S] = {1, 4, 5, 9}, sids[S * k];
    float E[V * d], pi[S * k], H[S], lam[S], y[N * d], c[N * d];
    float raw[3] = {0.3f, 1.1f, -0.4f};
    fill(E, V * d, -1, 1);
    fill(c, N * d, -1, 1);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)sd_rng_below(&g_rng, V);
    for (int s = 0; s < S; s++) {
        double z = 0;
        for (int i = 0; i < k; i++) {
            sids[s * k + i] = (int32_t)sd_rng_below(&g_rng, V);
            z += pi[s * k + i] = (float)urand(0.1, 1);
        }
        for (int i = 0; i < k; i++) pi[s * k + i] /= (float)z;
        H[s] = (float)urand(0, log(V));
    }
    sd_tr_embed_fwd(y, E, ids, N, d);
    sd_tr_sm_lambda_fwd(lam, H, S, raw);
    sd_tr_softmix_fwd(y, E, V - 1, rows, sids, pi, lam, S, k, d);

    float dE[V * d] = {0}, dlam[S] = {0}, draw[3] = {0}, dx[N * d];
    memcpy(dx, c, sizeof dx);
    sd_tr_softmix_bwd(dE, dlam, dx, E, V - 1, rows, sids, pi, lam, S, k, d);
    sd_tr_sm_lambda_bwd(draw, dlam, H, S, raw);
    for (int s = 0; s < S; s++) memset(dx + rows[s] * d, 0, d * sizeof(float));
    sd_tr_embed_bwd(dE, dx, ids, N, d);

    embed_ctx x = {N, d, V, S, k, V - 1, ids, rows, sids, to_double(pi, S * k), to_double(H, S),
                   to_double(c, N * d), to_double(E, V * d), to_double(raw, 3), calloc(N * d, sizeof(double))};
    embed_J(&x);
    assert_close_f(y, x.y, N * d, 1e-5, "embed+softmix");
    assert_int_equal(fd_check("embedding E", x.E, dE, V * d, embed_J, &x, 0), 0);
    assert_int_equal(fd_check("SM raw (r_s, r_a, r_b)", x.raw, draw, 3, embed_J, &x, 0), 0);
    free((void *)x.pi); free((void *)x.H); free((void *)x.c); free(x.E); free(x.raw); free(x.y);
}

typedef struct rms_ctx {
    int64_t N, d;
    double *x, *w, *y;
    const double *c;
} rms_ctx;

static double rms_J(void *v) {
    rms_ctx *r = v;
    dref_rmsnorm(r->y, r->x, r->w, r->N, r->d, 1e-5);
    return cdot(r->c, r->y, r->N * r->d);
}

static void test_rmsnorm(void **state) {
    (void)state;
    enum { N = 5, d = 12 };
    float x[N * d], w[d], y[N * d], rstd[N], c[N * d], dx[N * d] = {0}, dw[d] = {0};
    fill(x, N * d, -2, 2);
    fill(w, d, 0.5, 1.5);
    fill(c, N * d, -1, 1);
    sd_tr_rmsnorm_fwd(y, rstd, x, w, N, d, 1e-5f);
    sd_tr_rmsnorm_bwd(dx, dw, c, x, w, rstd, N, d);
    rms_ctx r = {N, d, to_double(x, N * d), to_double(w, d), calloc(N * d, sizeof(double)), to_double(c, N * d)};
    rms_J(&r);
    assert_close_f(y, r.y, N * d, 1e-6, "rmsnorm");
    assert_int_equal(fd_check("rmsnorm x", r.x, dx, N * d, rms_J, &r, 0), 0);
    assert_int_equal(fd_check("rmsnorm w", r.w, dw, d, rms_J, &r, 0), 0);
    free(r.x); free(r.w); free(r.y); free((void *)r.c);
}

typedef struct lin_ctx {
    int64_t N, I, O;
    double *x, *W, *b, *y;
    const double *c;
} lin_ctx;

static double lin_J(void *v) {
    lin_ctx *l = v;
    dref_linear(l->y, l->x, l->W, l->b, l->N, l->I, l->O);
    return cdot(l->c, l->y, l->N * l->O);
}

static void run_linear(int with_bias) {
    enum { N = 7, I = 9, O = 5 };
    float x[N * I], W[O * I], b[O], y[N * O], yref[N * O], c[N * O];
    float dx[N * I] = {0}, dW[O * I] = {0}, db[O] = {0};
    fill(x, N * I, -1, 1);
    fill(W, O * I, -1, 1);
    fill(b, O, -1, 1);
    fill(c, N * O, -1, 1);
    sd_tr_matmul_fwd(y, x, W, with_bias ? b : NULL, N, I, O);
    sd_tr_matmul_fwd_ref(yref, x, W, with_bias ? b : NULL, N, I, O);
    for (int i = 0; i < N * O; i++) assert_true(fabsf(y[i] - yref[i]) < 1e-5f);
    sd_tr_matmul_bwd(dx, dW, with_bias ? db : NULL, c, x, W, N, I, O);
    lin_ctx l = {N, I, O, to_double(x, N * I), to_double(W, O * I), with_bias ? to_double(b, O) : NULL,
                 calloc(N * O, sizeof(double)), to_double(c, N * O)};
    lin_J(&l);
    assert_close_f(y, l.y, N * O, 1e-6, "linear");
    assert_int_equal(fd_check("linear x", l.x, dx, N * I, lin_J, &l, 0), 0);
    assert_int_equal(fd_check("linear W", l.W, dW, O * I, lin_J, &l, 0), 0);
    if (with_bias) assert_int_equal(fd_check("linear b", l.b, db, O, lin_J, &l, 0), 0);
    free(l.x); free(l.W); free(l.b); free(l.y); free((void *)l.c);
}

static void test_linear(void **state) {
    (void)state;
    run_linear(1);
    run_linear(0);
}

typedef struct rope_ctx {
    int64_t B, L, nh, hd;
    int mode;
    double *x, *y;
    const double *c;
} rope_ctx;

static double rope_J(void *v) {
    rope_ctx *r = v;
    int64_t n = r->B * r->L * r->nh * r->hd;
    memcpy(r->y, r->x, (size_t)n * sizeof(double));
    dref_rope(r->y, r->B, r->L, r->nh, r->hd, 10000.0, r->mode);
    return cdot(r->c, r->y, n);
}

static void test_rope(void **state) {
    (void)state;
    enum { B = 2, L = 5, nh = 3, hd = 8, n = B * L * nh * hd };
    float cs[L * hd / 2], sn[L * hd / 2];
    sd_rope_table(cs, sn, NULL, L, hd, 10000.0f);
    for (int mode = 0; mode < 2; mode++) {
        float x[n], y[n], c[n], dx[n];
        fill(x, n, -1, 1);
        fill(c, n, -1, 1);
        memcpy(y, x, sizeof y);
        sd_tr_rope_fwd(y, cs, sn, B, L, nh, hd, mode);
        memcpy(dx, c, sizeof dx);
        sd_tr_rope_bwd(dx, cs, sn, B, L, nh, hd, mode);
        rope_ctx r = {B, L, nh, hd, mode, to_double(x, n), calloc(n, sizeof(double)), to_double(c, n)};
        rope_J(&r);
        assert_close_f(y, r.y, n, 1e-6, "rope");
        assert_int_equal(fd_check(mode ? "rope adjacent" : "rope neox", r.x, dx, n, rope_J, &r, 0), 0);
        free(r.x); free(r.y); free((void *)r.c);
    }
    /* llama.cpp's converter permutes each head's rows so that row 2i holds
     * original row i and row 2i+1 holds row i + hd/2; adjacent-pair RoPE on
     * permuted rows must equal NEOX RoPE on the original rows, permuted. */
    float x[n], xp[n], yn[n];
    fill(x, n, -1, 1);
    for (int v = 0; v < B * L * nh; v++)
        for (int i = 0; i < hd / 2; i++) {
            xp[v * hd + 2 * i] = x[v * hd + i];
            xp[v * hd + 2 * i + 1] = x[v * hd + i + hd / 2];
        }
    memcpy(yn, x, sizeof yn);
    sd_tr_rope_fwd(yn, cs, sn, B, L, nh, hd, SD_ROPE_NEOX);
    sd_tr_rope_fwd(xp, cs, sn, B, L, nh, hd, SD_ROPE_ADJACENT);
    for (int v = 0; v < B * L * nh; v++)
        for (int i = 0; i < hd / 2; i++) {
            assert_float_equal(xp[v * hd + 2 * i], yn[v * hd + i], 1e-6);
            assert_float_equal(xp[v * hd + 2 * i + 1], yn[v * hd + i + hd / 2], 1e-6);
        }
}

typedef struct att_ctx {
    int64_t B, L, H, Hkv, hd;
    int causal;
    double *q, *k, *v, *y;
    const double *c;
} att_ctx;

static double att_J(void *vv) {
    att_ctx *a = vv;
    dref_attention(a->y, a->q, a->k, a->v, a->B, a->L, a->H, a->Hkv, a->hd, a->causal);
    return cdot(a->c, a->y, a->B * a->L * a->H * a->hd);
}

static void test_attention(void **state) {
    (void)state;
    enum { B = 2, L = 6, H = 4, Hkv = 2, hd = 4, nq = B * L * H * hd, nk = B * L * Hkv * hd };
    for (int causal = 0; causal < 2; causal++) {
        float q[nq], k[nk], v[nk], y[nq], att[B * H * L * L], c[nq], scratch[L * L];
        float dq[nq] = {0}, dk[nk] = {0}, dv[nk] = {0};
        fill(q, nq, -1.5, 1.5);
        fill(k, nk, -1.5, 1.5);
        fill(v, nk, -1, 1);
        fill(c, nq, -1, 1);
        sd_tr_attention_fwd(y, att, q, k, v, B, L, H, Hkv, hd, causal);
        sd_tr_attention_bwd(dq, dk, dv, scratch, c, att, q, k, v, B, L, H, Hkv, hd);
        att_ctx a = {B, L, H, Hkv, hd, causal, to_double(q, nq), to_double(k, nk), to_double(v, nk),
                     calloc(nq, sizeof(double)), to_double(c, nq)};
        att_J(&a);
        assert_close_f(y, a.y, nq, 1e-5, "attention");
        assert_int_equal(fd_check(causal ? "causal attention q" : "attention q", a.q, dq, nq, att_J, &a, 0), 0);
        assert_int_equal(fd_check(causal ? "causal attention k" : "attention k", a.k, dk, nk, att_J, &a, 0), 0);
        assert_int_equal(fd_check(causal ? "causal attention v" : "attention v", a.v, dv, nk, att_J, &a, 0), 0);
        free(a.q); free(a.k); free(a.v); free(a.y); free((void *)a.c);
    }
}

typedef struct swi_ctx {
    int64_t n;
    double *g, *u, *y;
    const double *c;
} swi_ctx;

static double swi_J(void *v) {
    swi_ctx *s = v;
    dref_swiglu(s->y, s->g, s->u, s->n);
    return cdot(s->c, s->y, s->n);
}

static void test_swiglu(void **state) {
    (void)state;
    enum { n = 40 };
    float g[n], u[n], h[n], c[n], dg[n] = {0}, du[n] = {0};
    fill(g, n, -4, 4);
    fill(u, n, -2, 2);
    fill(c, n, -1, 1);
    sd_tr_swiglu_fwd(h, g, u, n);
    sd_tr_swiglu_bwd(dg, du, c, g, u, n);
    swi_ctx s = {n, to_double(g, n), to_double(u, n), calloc(n, sizeof(double)), to_double(c, n)};
    swi_J(&s);
    assert_close_f(h, s.y, n, 1e-6, "swiglu");
    assert_int_equal(fd_check("swiglu g", s.g, dg, n, swi_J, &s, 0), 0);
    assert_int_equal(fd_check("swiglu u", s.u, du, n, swi_J, &s, 0), 0);
    free(s.g); free(s.u); free(s.y); free((void *)s.c);
}

/* ---- MDLM's DiT blocks: LayerNorm with adaLN, gated residual, GELU, SiLU */

typedef struct dit_ctx {
    int64_t B, L, d;
    double *x, *w, *sh, *sc, *gate, *y2, *y;
    const double *c;
} dit_ctx;

/* J = c . [LN(x) w (1 + sc_b) + sh_b] in double, written from the definition. */
static double lnmod_J(void *v) {
    dit_ctx *t = v;
    for (int64_t n = 0; n < t->B * t->L; n++) {
        const double *xr = t->x + n * t->d;
        double m = 0, var = 0;
        for (int64_t j = 0; j < t->d; j++) m += xr[j];
        m /= (double)t->d;
        for (int64_t j = 0; j < t->d; j++) var += (xr[j] - m) * (xr[j] - m);
        double r = 1.0 / sqrt(var / (double)t->d + 1e-5);
        int64_t b = n / t->L;
        for (int64_t j = 0; j < t->d; j++)
            t->y[n * t->d + j] = (xr[j] - m) * r * t->w[j] * (1 + t->sc[b * t->d + j]) + t->sh[b * t->d + j];
    }
    return cdot(t->c, t->y, t->B * t->L * t->d);
}

static void test_layernorm_mod(void **state) {
    (void)state;
    enum { B = 2, L = 3, d = 12, N = B * L };
    float x[N * d], w[d], sh[B * d], sc[B * d], y[N * d], mean[N], rstd[N], c[N * d];
    float dx[N * d] = {0}, dw[d] = {0}, dsh[B * d] = {0}, dsc[B * d] = {0};
    fill(x, N * d, -2, 3);
    fill(w, d, 0.5, 1.5);
    fill(sh, B * d, -0.5, 0.5);
    fill(sc, B * d, -0.5, 0.5);
    fill(c, N * d, -1, 1);
    sd_tr_layernorm_mod_fwd(y, mean, rstd, x, w, sh, sc, B, L, d, 1e-5f);
    sd_tr_layernorm_mod_bwd(dx, dw, dsh, dsc, c, x, w, sc, mean, rstd, B, L, d);
    dit_ctx t = {B, L, d, to_double(x, N * d), to_double(w, d), to_double(sh, B * d), to_double(sc, B * d),
                 NULL, NULL, calloc(N * d, sizeof(double)), to_double(c, N * d)};
    lnmod_J(&t);
    assert_close_f(y, t.y, N * d, 1e-6, "layernorm_mod");
    /* the inference kernel computes the same forward (one sequence's modulation) */
    float yi[L * d];
    sd_layernorm_mod(yi, x + L * d, w, sh + d, sc + d, L, d, 1e-5f, NULL);
    assert_close_f(yi, t.y + L * d, L * d, 1e-6, "layernorm_mod vs nn");
    assert_int_equal(fd_check("layernorm_mod x", t.x, dx, N * d, lnmod_J, &t, 0), 0);
    assert_int_equal(fd_check("layernorm_mod w", t.w, dw, d, lnmod_J, &t, 0), 0);
    assert_int_equal(fd_check("layernorm_mod shift", t.sh, dsh, B * d, lnmod_J, &t, 0), 0);
    assert_int_equal(fd_check("layernorm_mod scale", t.sc, dsc, B * d, lnmod_J, &t, 0), 0);
    free(t.x); free(t.w); free(t.sh); free(t.sc); free(t.y); free((void *)t.c);
}

/* J = c . (x + gate_b * y2) */
static double gadd_J(void *v) {
    dit_ctx *t = v;
    for (int64_t n = 0; n < t->B * t->L; n++)
        for (int64_t j = 0; j < t->d; j++)
            t->y[n * t->d + j] = t->x[n * t->d + j] + t->gate[(n / t->L) * t->d + j] * t->y2[n * t->d + j];
    return cdot(t->c, t->y, t->B * t->L * t->d);
}

static void test_gated_add(void **state) {
    (void)state;
    enum { B = 2, L = 3, d = 8, N = B * L };
    float x[N * d], g[B * d], y2[N * d], out[N * d], c[N * d];
    float dx[N * d] = {0}, dg[B * d] = {0}, dy2[N * d] = {0};
    fill(x, N * d, -1, 1);
    fill(g, B * d, -1, 1);
    fill(y2, N * d, -2, 2);
    fill(c, N * d, -1, 1);
    sd_tr_gated_add_fwd(out, x, g, y2, B, L, d);
    sd_tr_gated_add_bwd(dx, dg, dy2, c, g, y2, B, L, d);
    dit_ctx t = {B, L, d, to_double(x, N * d), NULL, NULL, NULL, to_double(g, B * d), to_double(y2, N * d),
                 calloc(N * d, sizeof(double)), to_double(c, N * d)};
    gadd_J(&t);
    assert_close_f(out, t.y, N * d, 1e-6, "gated_add");
    assert_int_equal(fd_check("gated_add x", t.x, dx, N * d, gadd_J, &t, 0), 0);
    assert_int_equal(fd_check("gated_add gate", t.gate, dg, B * d, gadd_J, &t, 0), 0);
    assert_int_equal(fd_check("gated_add y", t.y2, dy2, N * d, gadd_J, &t, 0), 0);
    free(t.x); free(t.gate); free(t.y2); free(t.y); free((void *)t.c);
}

typedef struct act_ctx {
    int64_t n;
    int gelu;
    double *u, *y;
    const double *c;
} act_ctx;

static double act_J(void *v) {
    act_ctx *a = v;
    for (int64_t i = 0; i < a->n; i++) {
        double x = a->u[i];
        a->y[i] = a->gelu ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) : x / (1 + exp(-x));
    }
    return cdot(a->c, a->y, a->n);
}

static void test_gelu_silu(void **state) {
    (void)state;
    enum { n = 50 };
    for (int gelu = 0; gelu < 2; gelu++) {
        float u[n], h[n], c[n], du[n] = {0};
        fill(u, n, -5, 5);
        fill(c, n, -1, 1);
        if (gelu) {
            sd_tr_gelu_fwd(h, u, n);
            sd_tr_gelu_bwd(du, c, u, n);
        } else {
            sd_tr_silu_fwd(h, u, n);
            sd_tr_silu_bwd(du, c, u, n);
        }
        act_ctx a = {n, gelu, to_double(u, n), calloc(n, sizeof(double)), to_double(c, n)};
        act_J(&a);
        assert_close_f(h, a.y, n, 1e-6, gelu ? "gelu" : "silu");
        assert_int_equal(fd_check(gelu ? "gelu u" : "silu u", a.u, du, n, act_J, &a, 0), 0);
        free(a.u); free(a.y); free((void *)a.c);
    }
}

typedef struct xent_ctx {
    int64_t R, V;
    const int32_t *t;
    const double *w;
    double *x;
} xent_ctx;

static double xent_J(void *v) {
    xent_ctx *e = v;
    double s = 0;
    for (int64_t r = 0; r < e->R; r++) s += e->w[r] * dref_xent(e->x + r * e->V, e->V, e->t[r]);
    return s;
}

static void test_xent(void **state) {
    (void)state;
    enum { R = 6, V = 17 };
    float x[R * V], w[R], loss[R], dx[R * V] = {0};
    int32_t t[R];
    fill(x, R * V, -3, 3);
    fill(w, R, 0.1, 2);
    for (int r = 0; r < R; r++) t[r] = (int32_t)sd_rng_below(&g_rng, V);
    sd_tr_xent_fwd(loss, x, t, R, V);
    sd_tr_xent_bwd(dx, x, t, w, R, V);
    xent_ctx e = {R, V, t, to_double(w, R), to_double(x, R * V)};
    for (int r = 0; r < R; r++) assert_true(fabs(loss[r] - dref_xent(e.x + r * V, V, t[r])) < 1e-5);
    assert_int_equal(fd_check("cross-entropy logits", e.x, dx, R * V, xent_J, &e, 0), 0);
    /* the fused in-place version the model uses gives the same loss and gradient */
    float fl[R], fx[R * V];
    memcpy(fx, x, sizeof fx);
    sd_tr_xent_fused(fl, fx, t, w, R, V, NULL);
    for (int r = 0; r < R; r++) assert_float_equal(fl[r], loss[r], 1e-5);
    for (int i = 0; i < R * V; i++) assert_float_equal(fx[i], dx[i], 1e-6);
    free((void *)e.w); free(e.x);
    /* rows longer than the fused kernel's 1024-logit chunks, with a tail */
    enum { R2 = 3, V2 = 2061 };
    static float x2[R2 * V2], fx2[R2 * V2], dx2[R2 * V2];
    float l2[R2], fl2[R2], w2[R2] = {0.5f, 1.0f, 2.0f};
    int32_t t2[R2] = {0, 1500, V2 - 1};
    fill(x2, R2 * V2, -8, 8);
    memset(dx2, 0, sizeof dx2);
    memcpy(fx2, x2, sizeof x2);
    sd_tr_xent_fwd(l2, x2, t2, R2, V2);
    sd_tr_xent_bwd(dx2, x2, t2, w2, R2, V2);
    sd_tr_xent_fused(fl2, fx2, t2, w2, R2, V2, NULL);
    for (int r = 0; r < R2; r++) assert_float_equal(fl2[r], l2[r], 1e-5 * (1 + fabs(l2[r])));
    for (int i = 0; i < R2 * V2; i++) assert_float_equal(fx2[i], dx2[i], 1e-6);
}

/* The pass-1 statistics -- the inference kernels the trainer calls and
 * their naive twin -- against brute force, on a short row and a long one
 * (the kernels' vector and block-skipping paths). */
static void test_topk_entropy(void **state) {
    (void)state;
    double (*fns[2])(const float *, int64_t, int32_t, int32_t *, float *) = {sd_tr_topk_entropy,
                                                                            sd_tr_topk_entropy_ref};
    enum { VMAX = 1037 };
    static float x[VMAX];
    float pi[5];
    int32_t ids[5];
    for (int f = 0; f < 2; f++)
        for (int rep = 0; rep < 40; rep++) {
            int V = rep < 20 ? 30 : VMAX;
            fill(x, V, -3, 3);
            if (rep % 20 == 1) x[7] = x[3]; /* a tie: the lower id first */
            if (rep % 20 == 2) x[V - 1] = 9; /* the best at the tail */
            int k = 1 + rep % 5;
            double H = fns[f](x, V, k, ids, pi);
            /* brute force: repeatedly take the max not yet taken */
            double mx = -1e30, z = 0, Href = 0;
            for (int j = 0; j < V; j++) mx = fmax(mx, x[j]);
            for (int j = 0; j < V; j++) z += exp(x[j] - mx);
            for (int j = 0; j < V; j++) {
                double p = exp(x[j] - mx) / z;
                Href -= p * log(p);
            }
            assert_true(fabs(H - Href) < 1e-5);
            static int taken[VMAX];
            memset(taken, 0, sizeof taken);
            double zk = 0;
            int want[5];
            for (int i = 0; i < k; i++) {
                int best = -1;
                for (int j = 0; j < V; j++)
                    if (!taken[j] && (best < 0 || x[j] > x[best])) best = j;
                taken[best] = 1;
                want[i] = best;
                zk += exp(x[best] - mx) / z;
            }
            for (int i = 0; i < k; i++) {
                assert_int_equal(ids[i], want[i]);
                assert_float_equal(pi[i], exp(x[want[i]] - mx) / z / zk, 1e-6);
            }
        }
}

/* The checker must be able to fail: a backward off by 1% in one entry. */
static void test_fd_detects_a_wrong_gradient(void **state) {
    (void)state;
    enum { n = 40 };
    float g[n], u[n], h[n], c[n], dg[n] = {0}, du[n] = {0};
    fill(g, n, -4, 4);
    fill(u, n, -2, 2);
    fill(c, n, -1, 1);
    sd_tr_swiglu_fwd(h, g, u, n);
    sd_tr_swiglu_bwd(dg, du, c, g, u, n);
    int big = 0;
    for (int i = 1; i < n; i++)
        if (fabsf(dg[i]) > fabsf(dg[big])) big = i;
    dg[big] *= 1.01f;
    swi_ctx s = {n, to_double(g, n), to_double(u, n), calloc(n, sizeof(double)), to_double(c, n)};
    printf("  (expected failure follows)\n");
    assert_int_equal(fd_check("swiglu g, corrupted", s.g, dg, n, swi_J, &s, 0), 1);
    free(s.g); free(s.u); free(s.y); free((void *)s.c);
}

/* ------------------------------------------------------- whole model */

/* A double-precision forward of the whole model, reading the parameters
 * by their GGUF names from a double copy of the parameter arena. */
typedef struct model_ctx {
    const sd_tmodel *m;
    const sd_tbatch *b;
    double *P; /* double copy of m->params, perturbed by fd_check */
} model_ctx;

static const double *T(const model_ctx *c, const char *fmt, int l) {
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    const sd_ttensor *t = sd_tmodel_find(c->m, name);
    assert_non_null(t);
    return c->P + t->offset;
}

static double model_J_dit(model_ctx *c, double *x);

static double model_J(void *vctx) {
    model_ctx *c = vctx;
    const sd_hparams *hp = &c->m->hp;
    const sd_tbatch *b = c->b;
    int64_t B = b->B, L = b->L, N = B * L, d = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv;
    int64_t hd = d / H, kd = Hkv * hd, F = hp->n_ff, V = hp->n_vocab;
    int bias = hp->arch == SD_ARCH_DREAM;
    int mode = (hp->arch == SD_ARCH_LLADA && hp->rope_permuted) ? SD_ROPE_ADJACENT : SD_ROPE_NEOX;
    double *x = calloc(N * d, 8), *ln = calloc(N * d, 8), *q = calloc(N * d, 8), *k = calloc(N * kd, 8);
    double *v = calloc(N * kd, 8), *ay = calloc(N * d, 8), *t = calloc(N * d, 8);
    double *g = calloc(N * F, 8), *u = calloc(N * F, 8), *hs = calloc(N * F, 8), *lg = calloc(V, 8);
    const double *E = T(c, "token_embd.weight", 0), *raw = T(c, "smdiff.softmask.raw", 0);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < d; j++) x[n * d + j] = E[b->ids[n] * d + j];
    for (int64_t s = 0; s < b->n_soft; s++) {
        double lam = dref_lambda(b->soft_entropy[s], raw);
        for (int64_t j = 0; j < d; j++) {
            double mix = 0;
            for (int32_t i = 0; i < b->k; i++) mix += b->soft_pi[s * b->k + i] * E[b->soft_ids[s * b->k + i] * d + j];
            x[b->soft_rows[s] * d + j] = (1 - lam) * E[hp->mask_id * d + j] + lam * mix;
        }
    }
    if (hp->arch == SD_ARCH_MDLM) {
        double loss = model_J_dit(c, x);
        free(x); free(ln); free(q); free(k); free(v); free(ay); free(t); free(g); free(u); free(hs); free(lg);
        return loss;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        dref_rmsnorm(ln, x, T(c, "blk.%d.attn_norm.weight", l), N, d, hp->norm_eps);
        dref_linear(q, ln, T(c, "blk.%d.attn_q.weight", l), bias ? T(c, "blk.%d.attn_q.bias", l) : NULL, N, d, d);
        dref_linear(k, ln, T(c, "blk.%d.attn_k.weight", l), bias ? T(c, "blk.%d.attn_k.bias", l) : NULL, N, d, kd);
        dref_linear(v, ln, T(c, "blk.%d.attn_v.weight", l), bias ? T(c, "blk.%d.attn_v.bias", l) : NULL, N, d, kd);
        dref_rope(q, B, L, H, hd, hp->rope_base, mode);
        dref_rope(k, B, L, Hkv, hd, hp->rope_base, mode);
        dref_attention(ay, q, k, v, B, L, H, Hkv, hd, b->causal);
        dref_linear(t, ay, T(c, "blk.%d.attn_output.weight", l), NULL, N, d, d);
        for (int64_t i = 0; i < N * d; i++) x[i] += t[i];
        dref_rmsnorm(ln, x, T(c, "blk.%d.ffn_norm.weight", l), N, d, hp->norm_eps);
        dref_linear(g, ln, T(c, "blk.%d.ffn_gate.weight", l), NULL, N, d, F);
        dref_linear(u, ln, T(c, "blk.%d.ffn_up.weight", l), NULL, N, d, F);
        dref_swiglu(hs, g, u, N * F);
        dref_linear(t, hs, T(c, "blk.%d.ffn_down.weight", l), NULL, N, F, d);
        for (int64_t i = 0; i < N * d; i++) x[i] += t[i];
    }
    dref_rmsnorm(ln, x, T(c, "output_norm.weight", 0), N, d, hp->norm_eps);
    double loss = 0;
    for (int64_t r = 0; r < b->n_loss; r++) {
        dref_linear(lg, ln + b->loss_rows[r] * d, T(c, "output.weight", 0), NULL, 1, d, V);
        loss += b->loss_weights[r] * dref_xent(lg, V, b->loss_targets[r]);
    }
    free(x); free(ln); free(q); free(k); free(v); free(ay); free(t); free(g); free(u); free(hs); free(lg);
    return loss;
}

/* mdlm (MDLM's DiT), in double from its definition (docs/MODELS.md):
 * c = silu(fc2 silu(fc1 [cos(sigma f), sin(sigma f)] + b1) + b2), sigma 0 or,
 * with time conditioning, -log(1 - (1 - 1e-3) t_b) per sequence; per block
 * x += ga * Wo attn(rope(Wq h), rope(Wk h), Wv h), h = LN(x) w (1 + ca) + sa;
 * x += gf * (Wd gelu(Wu h + bu) + bd), h = LN(x) w (1 + cf) + sf; head with
 * adaLN, bias, mask logit - 1e6. */
static void dref_lnmod(double *out, const double *x, const double *w, const double *sh, const double *sc,
                       int64_t N, int64_t d) {
    for (int64_t n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < d; j++) m += x[n * d + j] / (double)d;
        for (int64_t j = 0; j < d; j++) v += (x[n * d + j] - m) * (x[n * d + j] - m) / (double)d;
        for (int64_t j = 0; j < d; j++)
            out[n * d + j] = (x[n * d + j] - m) / sqrt(v + 1e-5) * w[j] * (1 + sc[j]) + sh[j];
    }
}

static double model_J_dit(model_ctx *c, double *x) {
    const sd_hparams *hp = &c->m->hp;
    const sd_tbatch *b = c->b;
    int64_t B = b->B, L = b->L, N = B * L, d = hp->n_embd, H = hp->n_head, hd = d / H, F = hp->n_ff;
    int64_t V = hp->n_vocab, C = hp->n_cond, nT = hp->n_freq, nm = hp->n_layer * 6 * d + 2 * d;
    double *tf = calloc(nT, 8), *h1 = calloc(C, 8), *cv = calloc(C, 8), *md = calloc(B * nm, 8);
    double *ln = calloc(N * d, 8), *q = calloc(N * d, 8), *k = calloc(N * d, 8), *v = calloc(N * d, 8);
    double *ay = calloc(N * d, 8), *t = calloc(N * d, 8), *u = calloc(N * F, 8), *lg = calloc(V, 8);
    for (int64_t s = 0; s < B; s++) { /* each sequence's adaLN outputs, md[s * nm ...] */
        double sigma = hp->time_cond ? -log1p(-(1 - 1e-3) * b->t[s]) : 0.0;
        for (int64_t i = 0; i < nT / 2; i++) {
            tf[i] = cos(sigma * exp(-log(10000.0) * i / (double)(nT / 2)));
            tf[nT / 2 + i] = sin(sigma * exp(-log(10000.0) * i / (double)(nT / 2)));
        }
        dref_linear(h1, tf, T(c, "time_embd.fc1.weight", 0), T(c, "time_embd.fc1.bias", 0), 1, nT, C);
        for (int64_t i = 0; i < C; i++) h1[i] = h1[i] / (1 + exp(-h1[i]));
        dref_linear(cv, h1, T(c, "time_embd.fc2.weight", 0), T(c, "time_embd.fc2.bias", 0), 1, C, C);
        for (int64_t i = 0; i < C; i++) cv[i] = cv[i] / (1 + exp(-cv[i]));
        for (int l = 0; l < hp->n_layer; l++)
            dref_linear(md + s * nm + l * 6 * d, cv, T(c, "blk.%d.adaln.weight", l), T(c, "blk.%d.adaln.bias", l), 1,
                        C, 6 * d);
        dref_linear(md + s * nm + hp->n_layer * 6 * d, cv, T(c, "output_adaln.weight", 0),
                    T(c, "output_adaln.bias", 0), 1, C, 2 * d);
    }
#define M(n, l, j) (md + ((n) / L) * nm + (l) * 6 * d + (j) * d) /* row n's chunk */
    for (int l = 0; l < hp->n_layer; l++) {
        for (int64_t s = 0; s < B; s++)
            dref_lnmod(ln + s * L * d, x + s * L * d, T(c, "blk.%d.attn_norm.weight", l), M(s * L, l, 0),
                       M(s * L, l, 1), L, d);
        dref_linear(q, ln, T(c, "blk.%d.attn_q.weight", l), NULL, N, d, d);
        dref_linear(k, ln, T(c, "blk.%d.attn_k.weight", l), NULL, N, d, d);
        dref_linear(v, ln, T(c, "blk.%d.attn_v.weight", l), NULL, N, d, d);
        dref_rope(q, B, L, H, hd, hp->rope_base, SD_ROPE_NEOX);
        dref_rope(k, B, L, H, hd, hp->rope_base, SD_ROPE_NEOX);
        dref_attention(ay, q, k, v, B, L, H, H, hd, b->causal);
        dref_linear(t, ay, T(c, "blk.%d.attn_output.weight", l), NULL, N, d, d);
        for (int64_t i = 0; i < N * d; i++) x[i] += M(i / d, l, 2)[i % d] * t[i];
        for (int64_t s = 0; s < B; s++)
            dref_lnmod(ln + s * L * d, x + s * L * d, T(c, "blk.%d.ffn_norm.weight", l), M(s * L, l, 3),
                       M(s * L, l, 4), L, d);
        dref_linear(u, ln, T(c, "blk.%d.ffn_up.weight", l), T(c, "blk.%d.ffn_up.bias", l), N, d, F);
        for (int64_t i = 0; i < N * F; i++)
            u[i] = 0.5 * u[i] * (1 + tanh(sqrt(2 / M_PI) * (u[i] + 0.044715 * u[i] * u[i] * u[i])));
        dref_linear(t, u, T(c, "blk.%d.ffn_down.weight", l), T(c, "blk.%d.ffn_down.bias", l), N, F, d);
        for (int64_t i = 0; i < N * d; i++) x[i] += M(i / d, l, 5)[i % d] * t[i];
    }
    for (int64_t s = 0; s < B; s++)
        dref_lnmod(ln + s * L * d, x + s * L * d, T(c, "output_norm.weight", 0), M(s * L, hp->n_layer, 0),
                   M(s * L, hp->n_layer, 1), L, d);
#undef M
    double loss = 0;
    for (int64_t r = 0; r < b->n_loss; r++) {
        dref_linear(lg, ln + b->loss_rows[r] * d, T(c, "output.weight", 0), T(c, "output.bias", 0), 1, d, V);
        lg[hp->mask_id] += -1e6;
        loss += b->loss_weights[r] * dref_xent(lg, V, b->loss_targets[r]);
    }
    free(tf); free(h1); free(cv); free(md); free(ln); free(q); free(k); free(v); free(ay); free(t); free(u); free(lg);
    return loss;
}

static void run_model(sd_arch arch, int permuted, int causal, int with_soft) {
    sd_hparams hp = {0};
    hp.arch = arch;
    hp.n_vocab = 50;
    hp.n_embd = 16;
    hp.n_layer = 2;
    hp.n_head = 4;
    hp.n_head_kv = 2;
    hp.n_ff = 24;
    hp.n_ctx = 8;
    hp.norm_eps = 1e-5f;
    hp.rope_base = 10000.0f;
    hp.rope_permuted = permuted;
    hp.mask_id = 49;
    if (arch == SD_ARCH_MDLM) hp.n_head_kv = 4, hp.n_ff = 64, hp.n_cond = 6, hp.n_freq = 8;
    hp.time_cond = arch == SD_ARCH_MDLM && permuted; /* mdlm: "permuted" asks for time conditioning */
    enum { B = 2, L = 8, N = B * L, K = 3 };
    sd_tmodel *m = NULL;
    sd_error err = {0};
    assert_int_equal(sd_tmodel_create(&hp, B, L, 0, &m, &err), 0);
    sd_rng r;
    sd_rng_init(&r, 1234 + arch * 10 + causal, 0);
    /* std 0.3 rather than 0.02: activations of O(1) exercise every term */
    sd_tmodel_init_random(m, &r, 0.3f, 0.6, 2.0, -1.5);
    /* norms and biases away from their 1/0 init so their gradients are generic */
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].group == SD_TGROUP_NO_DECAY)
            for (int64_t j = 0; j < m->tensors[i].rows * m->tensors[i].cols; j++)
                m->params[m->tensors[i].offset + j] += (float)urand(-0.3, 0.3);

    int32_t ids[N], rows[N], tg[N], srows[N], sids[N * K];
    float w[N], spi[N * K], sH[N];
    int64_t nl = 0, ns = 0;
    for (int n = 0; n < N; n++) {
        int masked = causal ? 0 : sd_rng_uniform(&g_rng) < 0.5;
        ids[n] = masked ? hp.mask_id : (int32_t)sd_rng_below(&g_rng, hp.n_vocab - 1);
        if (causal || masked) {
            rows[nl] = n;
            tg[nl] = (int32_t)sd_rng_below(&g_rng, hp.n_vocab - 1);
            w[nl++] = (float)urand(0.2, 1.5) / N;
        }
        if (masked && with_soft) {
            srows[ns] = n;
            double z = 0;
            for (int i = 0; i < K; i++) {
                sids[ns * K + i] = (int32_t)sd_rng_below(&g_rng, hp.n_vocab - 1);
                z += spi[ns * K + i] = (float)urand(0.05, 1);
            }
            for (int i = 0; i < K; i++) spi[ns * K + i] /= (float)z;
            sH[ns++] = (float)urand(0.0, 3.5);
        }
    }
    if (arch == SD_ARCH_DREAM) rows[0] = 0, rows[1] = 0; /* a repeated row, as dream's shift makes */
    const float tb[B] = {0.3f, 0.85f};
    sd_tbatch b = {B, L, ids, causal, ns, K, srows, sids, spi, sH, nl, rows, tg, w, tb, 0};
    double loss;
    sd_tmodel_zero_grad(m);
    assert_int_equal(sd_tmodel_forward(m, &b, &loss), 0);
    assert_int_equal(sd_tmodel_backward(m, &b), 0);
    model_ctx c = {m, &b, to_double(m->params, (int64_t)m->n_params)};
    double ref = model_J(&c);
    printf("  %s%s%s: loss %.7f (double reference %.7f), %zu params, %lld soft rows\n",
           arch == SD_ARCH_DREAM ? "dream" : arch == SD_ARCH_LLADA ? "llada" : "mdlm",
           permuted ? (arch == SD_ARCH_MDLM ? " time-conditioned" : " permuted") : "",
           causal ? " causal" : "", loss, ref, m->n_params, (long long)ns);
    assert_true(fabs(loss - ref) < 1e-5 * fmax(1, fabs(ref)));
    int bad = 0;
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        if (!with_soft && t->group == SD_TGROUP_SM) continue; /* no soft rows: gradient is 0 */
        int64_t n = t->rows * t->cols;
        bad += fd_check(t->name, c.P + t->offset, m->grads + t->offset, n, model_J, &c, 96);
    }
    if (with_soft) assert_true(fabsf(m->g.sm_raw[0]) > 0 && fabsf(m->g.sm_raw[1]) > 0 && fabsf(m->g.sm_raw[2]) > 0);
    assert_int_equal(bad, 0);
    free(c.P);
    sd_tmodel_free(m);
}

static void test_model_dream_soft(void **state) {
    (void)state;
    run_model(SD_ARCH_DREAM, 0, 0, 1);
}

static void test_model_llada_permuted_soft(void **state) {
    (void)state;
    run_model(SD_ARCH_LLADA, 1, 0, 1);
}

static void test_model_llada_causal(void **state) {
    (void)state;
    run_model(SD_ARCH_LLADA, 0, 1, 0);
}

static void test_model_mdlm_soft(void **state) {
    (void)state;
    run_model(SD_ARCH_MDLM, 0, 0, 1);
    run_model(SD_ARCH_MDLM, 1, 0, 1); /* time conditioning: each sequence its own t */
}

static void test_bad_input(void **state) {
    (void)state;
    sd_hparams hp = {0};
    sd_tmodel *m = (sd_tmodel *)1;
    sd_error err = {0};
    hp.arch = SD_ARCH_DREAM;
    hp.n_vocab = 10, hp.n_embd = 16, hp.n_layer = 1, hp.n_head = 4, hp.n_head_kv = 3, hp.n_ff = 8;
    hp.norm_eps = 1e-5f, hp.rope_base = 1e4f, hp.mask_id = 9;
    assert_int_equal(sd_tmodel_create(&hp, 1, 4, 0, &m, &err), SMDIFF_E_INVAL); /* 4 % 3 */
    assert_null(m);
    assert_non_null(strstr(err.msg, "n_head_kv"));
    hp.n_head_kv = 2;
    assert_int_equal(sd_tmodel_create(&hp, 1, 4, 0, &m, &err), 0);
    int32_t ids[4] = {1, 2, 3, 10};
    sd_tbatch b = {1, 4, ids, 0, 0, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, 0};
    assert_int_equal(sd_tmodel_forward(m, &b, NULL), SMDIFF_E_INVAL);
    assert_int_equal(sd_tmodel_backward(m, &b), SMDIFF_E_STATE);
    b.L = 5;
    ids[3] = 0;
    assert_int_equal(sd_tmodel_forward(m, &b, NULL), SMDIFF_E_INVAL);
    b.L = 4;
    assert_int_equal(sd_tmodel_forward(m, &b, NULL), 0);
    /* a soft row given twice is refused */
    int32_t srows[2] = {1, 1}, sids[2] = {2, 3};
    float spi[2] = {1, 1}, sH[2] = {1, 1};
    sd_tbatch bs = {1, 4, ids, 0, 2, 1, srows, sids, spi, sH, 0, NULL, NULL, NULL, NULL, 0};
    assert_int_equal(sd_tmodel_forward(m, &bs, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(m->err.msg, "repeated"));
    srows[1] = 2;
    assert_int_equal(sd_tmodel_forward(m, &bs, NULL), 0);
    sd_tmodel_free(m);
    sd_tmodel_free(NULL);
    /* a batch whose activations cannot exist is refused, not overflowed */
    m = (sd_tmodel *)1;
    assert_int_equal(sd_tmodel_create(&hp, 1 << 20, 1 << 20, 0, &m, &err), SMDIFF_E_INVAL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "beyond"));
}

/* A forward that no backward follows (no_grad: SM's first pass, the
 * evaluations) takes the inference attention kernel: the same logits to
 * float rounding, not the same bits (so the kernel did run), and a
 * backward after it is refused. Bidirectional and causal. */
static void test_no_grad_forward(void **state) {
    (void)state;
    enum { L = 48, V = 12 };
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_LLADA;
    hp.n_vocab = V, hp.n_embd = 64, hp.n_layer = 2, hp.n_head = 2, hp.n_head_kv = 2, hp.n_ff = 96;
    hp.norm_eps = 1e-5f, hp.rope_base = 1e4f, hp.mask_id = V - 1;
    sd_tmodel *m = NULL;
    sd_error err = {0};
    assert_int_equal(sd_tmodel_create(&hp, 2, L, 0, &m, &err), 0);
    sd_rng r;
    sd_rng_init(&r, 5, 0);
    sd_tmodel_init_random(m, &r, 0.3f, 0.6, 2.0, -1.5);
    int32_t ids[2 * L], rows[2 * L];
    for (int i = 0; i < 2 * L; i++) ids[i] = (i * 7 + i / 5) % V, rows[i] = i;
    float *ref = malloc(sizeof(float) * 2 * L * V);
    assert_non_null(ref);
    for (int causal = 0; causal < 2; causal++) {
        sd_tbatch b = {2, L, ids, causal, 0, 0, NULL, NULL, NULL, NULL, 2 * L, rows, NULL, NULL, NULL, 0};
        assert_int_equal(sd_tmodel_forward(m, &b, NULL), 0);
        memcpy(ref, m->a.logits, sizeof(float) * 2 * L * V);
        b.no_grad = 1;
        assert_int_equal(sd_tmodel_forward(m, &b, NULL), 0);
        double worst = 0, big = 0;
        int same = 1;
        for (int i = 0; i < 2 * L * V; i++) {
            double e = fabs((double)m->a.logits[i] - ref[i]);
            worst = e > worst ? e : worst;
            big = fabs((double)ref[i]) > big ? fabs((double)ref[i]) : big;
            same &= m->a.logits[i] == ref[i];
        }
        printf("  no_grad forward, causal %d: largest difference %.2g, largest logit %.3g\n", causal, worst, big);
        assert_true(worst < 1e-5 * big);
        assert_false(same);
        assert_int_equal(sd_tmodel_backward(m, &b), SMDIFF_E_STATE);
    }
    free(ref);
    sd_tmodel_free(m);
}

int main(void) {
    sd_rng_init(&g_rng, 20251128, 7);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_softmix_lambda),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_layernorm_mod),
        cmocka_unit_test(test_gated_add),
        cmocka_unit_test(test_gelu_silu),
        cmocka_unit_test(test_xent),
        cmocka_unit_test(test_topk_entropy),
        cmocka_unit_test(test_fd_detects_a_wrong_gradient),
        cmocka_unit_test(test_model_dream_soft),
        cmocka_unit_test(test_model_llada_permuted_soft),
        cmocka_unit_test(test_model_llada_causal),
        cmocka_unit_test(test_model_mdlm_soft),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_grad_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
