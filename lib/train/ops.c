/* ops.c -- training ops; see ops.h for conventions and docs/TRAINING.md
 * for the derivation of each backward. */
#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "core/vecmath.h"
#include "diffusion/softmask.h"
#include "diffusion/stats_kernels.h"
#include "nn/blas.h"
#include "nn/ops.h"
#include "ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SD_TR_X86 1
#define SD_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define SD_TR_X86 0
#endif

/* ---------------------------------------------------------------- embedding */

/* out [N,d], E [V,d], ids [N] */
void sd_tr_embed_fwd(float *out, const float *E, const int32_t *ids, int64_t N, int64_t d) {
    for (int64_t n = 0; n < N; n++) memcpy(out + n * d, E + (int64_t)ids[n] * d, (size_t)d * sizeof(float));
}

/* dE [V,d], dout [N,d], ids [N] */
void sd_tr_embed_bwd(float *dE, const float *dout, const int32_t *ids, int64_t N, int64_t d) {
    for (int64_t n = 0; n < N; n++) sd_tr_acc(dE + (int64_t)ids[n] * d, dout + n * d, d);
}

/* out [N,d], E [V,d], rows [S], ids/pi [S,k], lam [S] */
void sd_tr_softmix_fwd(float *out, const float *E, int32_t mask_id, const int32_t *rows,
                       const int32_t *ids, const float *pi, const float *lam, int64_t S, int32_t k,
                       int64_t d) {
    const float *em = E + (int64_t)mask_id * d;
    for (int64_t s = 0; s < S; s++) {
        float *o = out + (int64_t)rows[s] * d;
        float l = lam[s];
        for (int64_t j = 0; j < d; j++) o[j] = (1.0f - l) * em[j];
        for (int32_t i = 0; i < k; i++) {
            float w = l * pi[s * k + i];
            const float *e = E + (int64_t)ids[s * k + i] * d;
            for (int64_t j = 0; j < d; j++) o[j] += w * e[j];
        }
    }
}

/* dE [V,d], dlam [S], dout [N,d]; the rest as in the forward */
void sd_tr_softmix_bwd(float *dE, float *dlam, const float *dout, const float *E, int32_t mask_id,
                       const int32_t *rows, const int32_t *ids, const float *pi, const float *lam,
                       int64_t S, int32_t k, int64_t d) {
    const float *em = E + (int64_t)mask_id * d;
    float *dem = dE + (int64_t)mask_id * d;
    for (int64_t s = 0; s < S; s++) {
        const float *g = dout + (int64_t)rows[s] * d;
        float l = lam[s];
        /* d out / d lam = sum_i pi_i E[v_i] - E[mask] */
        double dl = 0.0;
        for (int64_t j = 0; j < d; j++) {
            dem[j] += (1.0f - l) * g[j];
            dl -= (double)g[j] * em[j];
        }
        for (int32_t i = 0; i < k; i++) {
            float p = pi[s * k + i];
            const float *e = E + (int64_t)ids[s * k + i] * d;
            float *de = dE + (int64_t)ids[s * k + i] * d;
            double dot = 0.0;
            for (int64_t j = 0; j < d; j++) {
                de[j] += l * p * g[j];
                dot += (double)g[j] * e[j];
            }
            dl += p * dot;
        }
        dlam[s] += (float)dl;
    }
}

/* lam [S], H [S], raw [3] */
void sd_tr_sm_lambda_fwd(float *lam, const float *H, int64_t S, const float raw[3]) {
    double ws = sd_sigmoid(raw[0]), wa = sd_softplus(raw[1]), wb = -sd_softplus(raw[2]);
    for (int64_t s = 0; s < S; s++) lam[s] = (float)(ws * sd_sigmoid(wa * (-(double)H[s] - wb)));
}

/* draw [3], dlam [S], H [S], raw [3].
 *   z = wa (-H - wb), lam = ws sigmoid(z)
 *   dlam/dws = sigmoid(z),  dlam/dwa = ws s'(z) (-H - wb),  dlam/dwb = -ws s'(z) wa
 *   dws/dr_s = ws (1 - ws), dwa/dr_a = sigmoid(r_a), dwb/dr_b = -sigmoid(r_b) */
void sd_tr_sm_lambda_bwd(float draw[3], const float *dlam, const float *H, int64_t S,
                         const float raw[3]) {
    double ws = sd_sigmoid(raw[0]), wa = sd_softplus(raw[1]), wb = -sd_softplus(raw[2]);
    double gs = 0, ga = 0, gb = 0;
    for (int64_t s = 0; s < S; s++) {
        double u = -(double)H[s] - wb;
        double sz = sd_sigmoid(wa * u);
        double ds = sz * (1.0 - sz);
        gs += dlam[s] * sz;
        ga += dlam[s] * ws * ds * u;
        gb += dlam[s] * ws * ds * -wa;
    }
    draw[0] += (float)(gs * ws * (1.0 - ws));
    draw[1] += (float)(ga * sd_sigmoid(raw[1]));
    draw[2] += (float)(gb * -sd_sigmoid(raw[2]));
}

/* ---------------------------------------------------------------- RMSNorm */

/* out [N,d], rstd [N], x [N,d], w [d] */
void sd_tr_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t N,
                       int64_t d, float eps) {
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * d;
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
        float r = (float)(1.0 / sqrt(ss / (double)d + eps));
        rstd[n] = r;
        float *o = out + n * d;
        for (int64_t j = 0; j < d; j++) o[j] = xr[j] * r * w[j];
    }
}

/* y_j = x_j r w_j, r = (mean x^2 + eps)^-1/2, dr/dx_j = -r^3 x_j / d
 *   dx_j += r w_j dy_j - (r^3 / d) x_j sum_i dy_i w_i x_i
 *   dw_j += sum_n dy_j x_j r
 * dx [N,d], dw [d], dout [N,d], x [N,d], w [d], rstd [N] */
void sd_tr_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int64_t N, int64_t d) {
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * d, *g = dout + n * d;
        float *dxr = dx + n * d;
        float r = rstd[n];
        double dot = 0.0;
        for (int64_t j = 0; j < d; j++) dot += (double)g[j] * w[j] * xr[j];
        float c = (float)(dot * r * r * r / (double)d);
        for (int64_t j = 0; j < d; j++) {
            dxr[j] += r * w[j] * g[j] - c * xr[j];
            dw[j] += g[j] * xr[j] * r;
        }
    }
}

/* ---------------------------------------------------------------- linear */

/* out [N,O], x [N,I], W [O,I], b [O] */
void sd_tr_matmul_fwd(float *out, const float *x, const float *W, const float *b, int64_t N,
                      int64_t I, int64_t O) {
    sd_sgemm(0, 1, N, O, I, 1.0f, x, I, W, I, 0.0f, out, O);
    if (b)
        for (int64_t n = 0; n < N; n++) sd_tr_acc(out + n * O, b, O);
}

void sd_tr_matmul_fwd_ref(float *out, const float *x, const float *W, const float *b, int64_t N,
                          int64_t I, int64_t O) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            float acc = b ? b[o] : 0.0f;
            for (int64_t i = 0; i < I; i++) acc += x[n * I + i] * W[o * I + i];
            out[n * O + o] = acc;
        }
}

/* dx [N,I], dW [O,I], db [O], dout [N,O], x [N,I], W [O,I] */
void sd_tr_matmul_bwd(float *dx, float *dW, float *db, const float *dout, const float *x,
                      const float *W, int64_t N, int64_t I, int64_t O) {
    if (dx) sd_sgemm(0, 0, N, I, O, 1.0f, dout, O, W, I, 1.0f, dx, I);
    sd_sgemm(1, 0, O, I, N, 1.0f, dout, O, x, I, 1.0f, dW, I);
    if (db)
        for (int64_t n = 0; n < N; n++) sd_tr_acc(db, dout + n * O, O);
}

/* ---------------------------------------------------------------- RoPE */

/* The cos/sin table is the inference path's sd_rope_table (nn/ops.h). */

/* Rotate every pair of x [B,L,nh,hd] by +angle (sign = 1) or -angle (sign = -1). */
static void rope_rotate(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t L,
                        int64_t nh, int64_t hd, int mode, float sign) {
    int64_t h2 = hd / 2;
    /* NEOX pairs (i, i + hd/2); ADJACENT pairs (2i, 2i + 1). */
    int64_t stride_i = mode == SD_ROPE_ADJACENT ? 2 : 1;
    int64_t partner = mode == SD_ROPE_ADJACENT ? 1 : h2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++) {
            const float *c = cos_t + l * h2, *s = sin_t + l * h2;
            for (int64_t h = 0; h < nh; h++) {
                float *v = x + ((b * L + l) * nh + h) * hd;
                for (int64_t i = 0; i < h2; i++) {
                    float *a0 = v + i * stride_i, *a1 = a0 + partner;
                    float x0 = *a0, x1 = *a1, sn = sign * s[i];
                    *a0 = x0 * c[i] - x1 * sn;
                    *a1 = x1 * c[i] + x0 * sn;
                }
            }
        }
}

void sd_tr_rope_fwd(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t L,
                    int64_t nh, int64_t hd, int mode) {
    rope_rotate(x, cos_t, sin_t, B, L, nh, hd, mode, 1.0f);
}

void sd_tr_rope_bwd(float *dx, const float *cos_t, const float *sin_t, int64_t B, int64_t L,
                    int64_t nh, int64_t hd, int mode) {
    rope_rotate(dx, cos_t, sin_t, B, L, nh, hd, mode, -1.0f);
}

/* ---------------------------------------------------------------- attention */

/* out [B,L,H,hd], att [B,H,L,L], q [B,L,H,hd], k, v [B,L,Hkv,hd] */
void sd_tr_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                         int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal) {
    float scale = (float)(1.0 / sqrt((double)hd));
    int64_t group = H / Hkv, qs = H * hd, ks = Hkv * hd;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *qh = q + b * L * qs + h * hd;
            const float *kh = k + b * L * ks + (h / group) * hd;
            const float *vh = v + b * L * ks + (h / group) * hd;
            float *P = att + (b * H + h) * L * L;
            /* S = scale * Q K^T  [L,L] */
            sd_sgemm(0, 1, L, L, hd, scale, qh, qs, kh, ks, 0.0f, P, L);
            for (int64_t i = 0; i < L; i++) {
                float *row = P + i * L;
                int64_t n = causal ? i + 1 : L;
                float mx = row[0];
                for (int64_t j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
                double z = 0.0;
                for (int64_t j = 0; j < n; j++) {
                    row[j] = sd_expf(row[j] - mx);
                    z += row[j];
                }
                float iz = (float)(1.0 / z);
                for (int64_t j = 0; j < n; j++) row[j] *= iz;
                for (int64_t j = n; j < L; j++) row[j] = 0.0f;
            }
            /* O = P V  [L,hd] */
            sd_sgemm(0, 0, L, hd, L, 1.0f, P, L, vh, ks, 0.0f, out + b * L * qs + h * hd, qs);
        }
}

/* dP = dO V^T;  dV += P^T dO;  dS = P * (dP - rowsum(P * dP));
 * dQ += scale dS K;  dK += scale dS^T Q.  Masked (causal) entries have P = 0
 * and so dS = 0: no mask needed here. scratch [L,L] holds dP then dS. */
void sd_tr_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                         const float *att, const float *q, const float *k, const float *v,
                         int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t hd) {
    float scale = (float)(1.0 / sqrt((double)hd));
    int64_t group = H / Hkv, qs = H * hd, ks = Hkv * hd;
    float *dS = scratch;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t qo = b * L * qs + h * hd, ko = b * L * ks + (h / group) * hd;
            const float *P = att + (b * H + h) * L * L;
            const float *dOh = dout + qo;
            sd_sgemm(0, 1, L, L, hd, 1.0f, dOh, qs, v + ko, ks, 0.0f, dS, L);
            sd_sgemm(1, 0, L, hd, L, 1.0f, P, L, dOh, qs, 1.0f, dv + ko, ks);
            for (int64_t i = 0; i < L; i++) {
                const float *p = P + i * L;
                float *g = dS + i * L;
                double dot = 0.0;
                for (int64_t j = 0; j < L; j++) dot += (double)p[j] * g[j];
                for (int64_t j = 0; j < L; j++) g[j] = p[j] * (g[j] - (float)dot);
            }
            sd_sgemm(0, 0, L, hd, L, scale, dS, L, k + ko, ks, 1.0f, dq + qo, qs);
            sd_sgemm(1, 0, L, hd, L, scale, dS, L, q + qo, qs, 1.0f, dk + ko, ks);
        }
}

/* ---------------------------------------------------------------- SwiGLU */

/* h, g, u [n] */
void sd_tr_swiglu_fwd(float *h, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        h[i] = sd_siluf(g[i]) * u[i];
    }
}

/* dh/du = silu(g);  dh/dg = u * s (1 + g (1 - s)),  s = sigmoid(g) */
void sd_tr_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                      int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float s = sd_sigmoidf(g[i]);
        du[i] += dh[i] * g[i] * s;
        dg[i] += dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

/* ----------------------------------------------------- MDLM's DiT blocks */

void sd_tr_layernorm_mod_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                             const float *shift, const float *scale, int64_t B, int64_t L, int64_t d,
                             float eps) {
    for (int64_t n = 0; n < B * L; n++) {
        const float *xr = x + n * d, *sh = shift + (n / L) * d, *sc = scale + (n / L) * d;
        float *o = out + n * d;
        double m = 0.0, v = 0.0;
        for (int64_t j = 0; j < d; j++) m += xr[j];
        m /= (double)d;
        for (int64_t j = 0; j < d; j++) v += (xr[j] - m) * (xr[j] - m);
        float r = (float)(1.0 / sqrt(v / (double)d + eps));
        mean[n] = (float)m;
        rstd[n] = r;
        for (int64_t j = 0; j < d; j++) o[j] = (xr[j] - (float)m) * r * w[j] * (1.0f + sc[j]) + sh[j];
    }
}

void sd_tr_layernorm_mod_bwd(float *dx, float *dw, float *dshift, float *dscale, const float *dout,
                             const float *x, const float *w, const float *scale, const float *mean,
                             const float *rstd, int64_t B, int64_t L, int64_t d) {
    /* With xh = (x - mean) rstd and a = w (1 + scale): y = xh a + shift, so
     * dxh = g a and dx = rstd (dxh - mean(dxh) - xh mean(dxh xh)). */
    for (int64_t n = 0; n < B * L; n++) {
        const int64_t b = n / L;
        const float *xr = x + n * d, *g = dout + n * d, *sc = scale + b * d;
        const float m = mean[n], r = rstd[n];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double dxh = (double)g[j] * w[j] * (1.0f + sc[j]);
            s1 += dxh;
            s2 += dxh * (xr[j] - m) * r;
        }
        s1 /= (double)d;
        s2 /= (double)d;
        for (int64_t j = 0; j < d; j++) {
            float xh = (xr[j] - m) * r;
            float dxh = g[j] * w[j] * (1.0f + sc[j]);
            dx[n * d + j] += r * (dxh - (float)s1 - xh * (float)s2);
            dw[j] += g[j] * xh * (1.0f + sc[j]);
            if (dscale) dscale[b * d + j] += g[j] * xh * w[j];
            if (dshift) dshift[b * d + j] += g[j];
        }
    }
}

void sd_tr_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int64_t B,
                         int64_t L, int64_t d) {
    for (int64_t n = 0; n < B * L; n++)
        for (int64_t j = 0; j < d; j++) out[n * d + j] = x[n * d + j] + gate[(n / L) * d + j] * y[n * d + j];
}

void sd_tr_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate,
                         const float *y, int64_t B, int64_t L, int64_t d) {
    for (int64_t n = 0; n < B * L; n++) {
        const float *g = gate + (n / L) * d;
        float *dg = dgate + (n / L) * d;
        for (int64_t j = 0; j < d; j++) {
            float t = dout[n * d + j];
            if (dx) dx[n * d + j] += t;
            dy[n * d + j] += g[j] * t;
            dg[j] += t * y[n * d + j];
        }
    }
}

void sd_tr_gelu_fwd(float *h, const float *u, int64_t n) {
    if (h != u) memcpy(h, u, (size_t)n * sizeof(float));
    sd_gelu_tanh(h, n, NULL);
}

void sd_tr_gelu_bwd(float *du, const float *dh, const float *u, int64_t n) {
    /* d/du 0.5 u (1 + tanh k), k = c0 (u + c1 u^3):
     *   0.5 (1 + tanh k) + 0.5 u (1 - tanh^2 k) c0 (1 + 3 c1 u^2) */
    const float c0 = 0.7978845608028654f, c1 = 0.044715f;
    for (int64_t i = 0; i < n; i++) {
        float x = u[i], t = tanhf(c0 * (x + c1 * x * x * x));
        du[i] += dh[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c0 * (1.0f + 3.0f * c1 * x * x));
    }
}

void sd_tr_silu_fwd(float *h, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = sd_siluf(u[i]);
}

void sd_tr_silu_bwd(float *du, const float *dh, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float s = sd_sigmoidf(u[i]);
        du[i] += dh[i] * s * (1.0f + u[i] * (1.0f - s));
    }
}

/* ---------------------------------------------------------------- rows */

void sd_tr_gather_rows(float *out, const float *x, const int32_t *rows, int64_t R, int64_t d) {
    for (int64_t r = 0; r < R; r++) memcpy(out + r * d, x + (int64_t)rows[r] * d, (size_t)d * sizeof(float));
}

void sd_tr_scatter_add_rows(float *dx, const float *dout, const int32_t *rows, int64_t R,
                            int64_t d) {
    for (int64_t r = 0; r < R; r++) sd_tr_acc(dx + (int64_t)rows[r] * d, dout + r * d, d);
}

void sd_tr_add(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void sd_tr_acc(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* ---------------------------------------------------------------- cross-entropy */

/* max and log-sum-exp of one row, in double for the sum */
static double row_lse(const float *x, int64_t V, float *mx_out) {
    float mx = x[0];
    for (int64_t j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double z = 0.0;
    for (int64_t j = 0; j < V; j++) z += exp((double)(x[j] - mx));
    *mx_out = mx;
    return (double)mx + log(z);
}

/* loss [R], logits [R,V], targets [R] */
void sd_tr_xent_fwd(float *loss, const float *logits, const int32_t *targets, int64_t R,
                    int64_t V) {
    for (int64_t r = 0; r < R; r++) {
        float mx;
        const float *x = logits + r * V;
        loss[r] = (float)(row_lse(x, V, &mx) - x[targets[r]]);
    }
}

/* dlogits [R,V], w [R] */
void sd_tr_xent_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *w,
                    int64_t R, int64_t V) {
    for (int64_t r = 0; r < R; r++) {
        float mx;
        const float *x = logits + r * V;
        float *g = dlogits + r * V;
        double lse = row_lse(x, V, &mx);
        float wr = w[r];
        for (int64_t j = 0; j < V; j++) g[j] += wr * (float)exp((double)x[j] - lse);
        g[targets[r]] -= wr;
    }
}

typedef struct xent_ctx {
    float *loss, *x;
    const int32_t *t;
    const float *w;
    int64_t V;
} xent_ctx;

/* One row of the fused cross-entropy, in place: x[V] becomes
 * w (softmax(x) - onehot(t)), the row's loss goes to *loss. Vector code on
 * core/vecmath.h's exp (8 lanes), inlined into a generic and an AVX2
 * caller; the normaliser is summed in float over 1024 logits at a time and
 * then in double. The naive twin is sd_tr_xent_fwd + sd_tr_xent_bwd. */
#define XENT_CHUNK 1024
SD_FP_CONTRACT_FAST_BEGIN
SD_V8_INLINE void xent_row_impl(float *x, int64_t V, int32_t t, float w, float *loss) {
    const int64_t V8 = V & ~(int64_t)7;
    const float xt = x[t];
    float mx = x[0];
    if (V8) {
        sd_v8f vm = sd_v8_load(x);
        for (int64_t j = 8; j < V8; j += 8) vm = sd_v8_max(vm, sd_v8_load(x + j));
        for (int i = 0; i < 8; i++) mx = vm[i] > mx ? vm[i] : mx;
    }
    for (int64_t j = V8; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double z = 0.0;
    for (int64_t j0 = 0; j0 < V8; j0 += XENT_CHUNK) {
        int64_t j1 = j0 + XENT_CHUNK < V8 ? j0 + XENT_CHUNK : V8;
        sd_v8f acc = sd_v8_splat(0.0f), m8 = sd_v8_splat(mx);
        for (int64_t j = j0; j < j1; j += 8) {
            sd_v8f e = sd_v8_exp(sd_v8_load(x + j) - m8);
            sd_v8_store(x + j, e);
            acc += e;
        }
        z += (double)sd_v8_hsum(acc);
    }
    for (int64_t j = V8; j < V; j++) z += (double)(x[j] = sd_v1_exp(x[j] - mx));
    *loss = (float)(log(z) + (double)mx - (double)xt);
    const float sc = (float)(w / z);
    const sd_v8f s8 = sd_v8_splat(sc);
    for (int64_t j = 0; j < V8; j += 8) sd_v8_store(x + j, sd_v8_load(x + j) * s8);
    for (int64_t j = V8; j < V; j++) x[j] *= sc;
    x[t] -= w;
}

static void xent_row_c(float *x, int64_t V, int32_t t, float w, float *loss) { xent_row_impl(x, V, t, w, loss); }
#if SD_TR_X86
SD_TARGET_AVX2 static void xent_row_avx2(float *x, int64_t V, int32_t t, float w, float *loss) {
    xent_row_impl(x, V, t, w, loss);
}
#endif
SD_FP_CONTRACT_FAST_END

static void xent_rows(void *vctx, int64_t r0, int64_t r1, int thread) {
    (void)thread;
    const xent_ctx *c = vctx;
#if SD_TR_X86
    const int avx2 = sd_cpu_has(SD_CPU_SET_AVX2);
#endif
    for (int64_t r = r0; r < r1; r++) {
#if SD_TR_X86
        if (avx2) {
            xent_row_avx2(c->x + r * c->V, c->V, c->t[r], c->w[r], &c->loss[r]);
            continue;
        }
#endif
        xent_row_c(c->x + r * c->V, c->V, c->t[r], c->w[r], &c->loss[r]);
    }
}

/* loss [R], logits [R,V] (in place -> dlogits), targets [R], w [R] */
void sd_tr_xent_fused(float *loss, float *logits, const int32_t *targets, const float *w,
                      int64_t R, int64_t V, sd_pool *pool) {
    xent_ctx c = {loss, logits, targets, w, V};
    sd_pool_run(pool, xent_rows, &c, R);
}

/* logits [V], ids/pi [k]: the inference statistics kernels
 * (diffusion/stats_kernels.h) at temperature 1, unfiltered -- one fused,
 * vectorised pass for the maximum, the softmax sums and the k best. */
double sd_tr_topk_entropy(const float *logits, int64_t V, int32_t k, int32_t *ids, float *pi) {
    sd_stats_params p = {.temperature = 1.0, .top_p = 1.0, .sm_k = k};
    sd_row_scratch none = {NULL, NULL, NULL};
    sd_row_summary r;
    if (sd_row_summarize(logits, V, &p, &none, &r)) return NAN;
    sd_row_softmax_topk(&r, k, ids, pi);
    double zk = 0.0; /* pi: renormalised over the k best */
    for (int32_t i = 0; i < k; i++) zk += pi[i];
    for (int32_t i = 0; i < k; i++) pi[i] = zk > 0 ? (float)(pi[i] / zk) : 0.0f;
    return sd_row_entropy(&r);
}

/* The naive twin: exp in double, insertion into a sorted list of k. */
double sd_tr_topk_entropy_ref(const float *logits, int64_t V, int32_t k, int32_t *ids, float *pi) {
    float mx = logits[0];
    for (int64_t j = 1; j < V; j++) mx = logits[j] > mx ? logits[j] : mx;
    double z = 0.0, zx = 0.0;
    for (int64_t j = 0; j < V; j++) {
        double e = exp((double)logits[j] - mx);
        z += e;
        zx += e * (double)(logits[j] - mx);
    }
    double H = log(z) - zx / z;
    int32_t n = 0;
    for (int64_t j = 0; j < V; j++) {
        float x = logits[j];
        if (n == k && !(x > logits[ids[k - 1]])) continue;
        int32_t pos = n < k ? n++ : k - 1;
        while (pos > 0 && x > logits[ids[pos - 1]]) {
            ids[pos] = ids[pos - 1];
            pos--;
        }
        ids[pos] = (int32_t)j;
    }
    double zk = 0.0;
    for (int32_t i = 0; i < n; i++) zk += exp((double)logits[ids[i]] - mx);
    for (int32_t i = 0; i < k; i++) {
        pi[i] = i < n ? (float)(exp((double)logits[ids[i]] - mx) / zk) : 0.0f;
        if (i >= n) ids[i] = ids[0];
    }
    return H;
}
