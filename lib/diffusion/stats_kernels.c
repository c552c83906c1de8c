/* stats_kernels.c -- per-row kernels over a vocabulary row (see
 * stats_kernels.h): the fused top-K + softmax-sums pass, sums at a
 * temperature, and the top-p / top-k support of the sampling distribution,
 * with the histogram path for rows whose 64 best miss top_p.
 *
 * Fast path per row x[V]:
 *   pass 1: the K best (value, id) pairs, descending, ties by lower id.
 *           Blocks of 64 are skipped when their maximum cannot enter.
 *   pass 2: s = sum exp(x - m), t = sum exp(x - m) (x - m), m = max;
 *           H(p) = log s - t / s.
 *   (both fused into one read of the row), then q's support is either the
 *   whole row at temperature T (no filter), an explicit sorted candidate
 *   list (top-p / top-k within the 64 best), or, when top-p keeps more than
 *   the 64 best, everything above a cut (tau, tau_id) found with a
 *   histogram of the row's mass (top_p_threshold).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/cpu.h"
#include "stats_kernels.h"

#define BLK 64

/* Insert (v, id) into the descending list c[0..*n) of capacity K. Called
 * only when v beats the current K-th value (or the list is not full). */
static inline void cand_insert(sd_cand *c, int32_t *n, int32_t K, float v, int32_t id) {
    int32_t i = *n < K ? (*n)++ : K - 1;
    while (i > 0 && c[i - 1].v < v) {
        c[i] = c[i - 1];
        i--;
    }
    c[i].v = v;
    c[i].id = id;
}

/* ---- vector kernels.
 * GCC/clang vector extensions: 8 floats per vector, compiled for the
 * baseline ISA and, on x86-64, once more for AVX2+FMA, picked at run time.
 * The float lanes are summed in a fixed order, so a row's result does not
 * depend on the thread that computes it. */
/* The vector type and helpers are core/vecmath.h's (short names here);
 * multiply-adds fuse in the kernels (SD_FP_CONTRACT_FAST_BEGIN, see there). */
SD_FP_CONTRACT_FAST_BEGIN
typedef sd_v8f v8sf;
typedef sd_v8i v8si;
#define VL 8
#define vload sd_v8_load
#define vsplat sd_v8_splat
#define vmax sd_v8_max
#define vmin sd_v8_min
#define vexp sd_v8_exp_core
#define hsum sd_v8_hsum

#define SD_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Largest of x[0..BLK). */
SD_ALWAYS_INLINE float block_max_g(const float *x) {
    v8sf a = vload(x), b = vload(x + 8);
    for (int i = 16; i < BLK; i += 16) {
        a = vmax(vload(x + i), a);
        b = vmax(vload(x + i + 8), b);
    }
    a = vmax(a, b);
    float m = a[0];
    for (int j = 1; j < VL; j++) m = a[j] > m ? a[j] : m;
    return m;
}

/* s = sum exp(beta (x - m)), t = sum exp(beta (x - m)) * beta (x - m),
 * arguments clamped at -87 (so -inf logits stay finite). */
SD_ALWAYS_INLINE void exp_sums_g(const float *x, int64_t V, float m, float beta, double *s_out,
                                 double *t_out) {
    v8sf s0 = vsplat(0), s1 = vsplat(0), t0 = vsplat(0), t1 = vsplat(0);
    v8sf vm = vsplat(m), vb = vsplat(beta), lo = vsplat(-87.0f);
    int64_t i = 0;
    for (; i + 2 * VL <= V; i += 2 * VL) {
        v8sf y0 = vmax(lo, (vload(x + i) - vm) * vb); /* NaN stays NaN */
        v8sf y1 = vmax(lo, (vload(x + i + VL) - vm) * vb);
        v8sf e0 = vexp(y0), e1 = vexp(y1);
        s0 += e0;
        s1 += e1;
        t0 += e0 * y0;
        t1 += e1 * y1;
    }
    double S = (double)hsum(s0) + hsum(s1), T = (double)hsum(t0) + hsum(t1);
    for (; i < V; i++) {
        float y = (x[i] - m) * beta;
        y = y < -87.0f ? -87.0f : y;
        float e = sd_v1_exp(y);
        S += e;
        T += (double)e * y;
    }
    *s_out = S;
    *t_out = T;
}

/* Sum of exp(beta (x - m)) over x[0..n), n a multiple of VL. */
SD_ALWAYS_INLINE float exp_chunk_g(const float *x, int64_t n, float m, float beta) {
    v8sf s = vsplat(0), vm = vsplat(m), vb = vsplat(beta), lo = vsplat(-87.0f);
    for (int64_t i = 0; i < n; i += VL) s += vexp(vmax(lo, (vload(x + i) - vm) * vb));
    return hsum(s);
}

/* Histogram geometry of the top-p path: bin b holds y = beta (x - m) in
 * (-(b+1) w, -b w], w = 1 / sc, for a per-row sc (hist_scale), the last
 * bin everything below; y is clamped at -HRANGE as the exponentials are. */
#define HBINS 2048
#define HRANGE 87.0f

/* e[i] = exp(max(beta (x[i] - m), -87)) and bin[i] its histogram bin at sc
 * bins per unit of y, for i < n, n a multiple of VL. The bin is computed as
 * hbin() does, in the same float operations, so the two agree exactly.
 * Entries of the last bin (everything below the histogram's range) get bin
 * HBINS + (i mod VL) instead: slots of their own, one per lane, so that
 * adding them up makes no long dependency chain. y[i] (when y is not NULL)
 * receives the clamped argument. */
SD_ALWAYS_INLINE void exp_bins_g(const float *x, int64_t n, float m, float beta, float scale, float *e,
                                 int32_t *bin, float *y) {
    v8sf vm = vsplat(m), vb = vsplat(beta), lo = vsplat(-HRANGE), sc = vsplat(scale);
    v8sf last = vsplat((float)(HBINS - 1));
    v8si vlast = {HBINS - 1, HBINS - 1, HBINS - 1, HBINS - 1, HBINS - 1, HBINS - 1, HBINS - 1, HBINS - 1};
    v8si far_slot = {HBINS, HBINS + 1, HBINS + 2, HBINS + 3, HBINS + 4, HBINS + 5, HBINS + 6, HBINS + 7};
    for (int64_t i = 0; i < n; i += VL) {
        v8sf a = vmax(lo, (vload(x + i) - vm) * vb);
        v8sf r = vexp(a);
        v8sf na = -a, f = na * sc;
        v8si b = __builtin_convertvector(vmin(f, last), v8si);
        v8si far = b >= vlast;
        b = (b & ~far) | (far_slot & far);
        if (y) memcpy(y + i, &a, sizeof a);
        memcpy(e + i, &r, sizeof r);
        memcpy(bin + i, &b, sizeof b);
    }
}

/* The smallest of a sample of x (the first VL of every BLK entries): where
 * a row's histogram may end (hist_scale). */
SD_ALWAYS_INLINE float sample_min_g(const float *x, int64_t V) {
    v8sf mn = vsplat(INFINITY);
    for (int64_t i = 0; i + VL <= V; i += BLK) mn = vmin(mn, vload(x + i));
    float r = mn[0];
    for (int j = 1; j < VL; j++) r = mn[j] < r ? mn[j] : r;
    return r;
}

/* An estimate of sum exp(beta (x - m)) over the entries below xk: the
 * first VL of every BLK entries, times BLK / VL. A guess that only steers
 * the choice of path (stats_row), at an eighth of a pass. */
SD_ALWAYS_INLINE double rest_sample_g(const float *x, int64_t V, float m, float beta, float xk) {
    v8sf s = vsplat(0), vm = vsplat(m), vb = vsplat(beta), lo = vsplat(-HRANGE), vk = vsplat(xk);
    for (int64_t i = 0; i + VL <= V; i += BLK) {
        v8sf v = vload(x + i);
        v8sf r = vexp(vmax(lo, (v - vm) * vb));
        s += (v8sf)((v8si)r & (v < vk));
    }
    return (double)hsum(s) * (BLK / VL);
}

/* The entries of x[0..n) (n a multiple of VL) in histogram bin bc (bins
 * at sc bins per unit of y, as exp_bins_g computes them), appended to out as (value, id); returns
 * their count. */
SD_ALWAYS_INLINE int64_t collect_bin_g(const float *x, int64_t n, float m, float beta, float scale,
                                       int32_t bc, sd_cand *out) {
    v8sf vm = vsplat(m), vb = vsplat(beta), lo = vsplat(-HRANGE), sc = vsplat(scale);
    v8sf last = vsplat((float)(HBINS - 1));
    v8si vbc = {bc, bc, bc, bc, bc, bc, bc, bc};
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i += VL) {
        v8sf a = vmax(lo, (vload(x + i) - vm) * vb);
        v8sf na = -a, f = na * sc;
        v8si b = __builtin_convertvector(vmin(f, last), v8si);
        v8si eq = b == vbc;
        uint32_t bits = 0;
        for (int j = 0; j < VL; j++) bits |= (uint32_t)(eq[j] & 1) << j;
        while (bits) {
            int j = __builtin_ctz(bits);
            bits &= bits - 1;
            out[cnt].v = x[i + j];
            out[cnt].id = (int32_t)(i + j);
            cnt++;
        }
    }
    return cnt;
}

/* Sum of e[i] over the kept entries of x[0..n) (n a multiple of VL): x > tau,
 * or x == tau and base + i <= tau_id. The inverse-CDF walk over a top-p
 * kept set uses it to skip whole chunks without an exponential. */
SD_ALWAYS_INLINE float kept_chunk_g(const float *x, const float *e, int64_t n, int32_t base, float tau,
                                    int32_t tau_id) {
    v8sf s = vsplat(0), vt = vsplat(tau);
    v8si id = {0, 1, 2, 3, 4, 5, 6, 7}, vtid = {tau_id, tau_id, tau_id, tau_id, tau_id, tau_id, tau_id, tau_id};
    id += base;
    for (int64_t i = 0; i < n; i += VL) {
        v8sf xv = vload(x + i);
        v8si keep = (xv > vt) | ((xv == vt) & (id <= vtid));
        s += (v8sf)((v8si)vload(e + i) & keep);
        id += VL;
    }
    return hsum(s);
}

/* Passes 1 and 2 fused, so the row is read from memory once: per block of
 * 64, its maximum decides whether it can enter the top list, and its
 * exponentials are summed against the running maximum; when the maximum
 * grows, the sums are rescaled:
 *     s' = s e^(m - m'),   t' = e^(m - m') (t + s (m - m'))
 * for s = sum e^(x - m), t = sum e^(x - m) (x - m). Returns the list size;
 * *m_out, *s_out, *t_out are relative to the row maximum. A row holding
 * NaN or +inf gives non-finite sums. */
SD_ALWAYS_INLINE int32_t fused_g(const float *x, int64_t V, int32_t K, sd_cand *c, float *m_out,
                                 double *s_out, double *t_out, const int with_t) {
    int32_t n = 0;
    float thr = -INFINITY, m = -INFINITY;
    v8sf s0 = vsplat(0), s1 = vsplat(0), t0 = vsplat(0), t1 = vsplat(0), lo = vsplat(-87.0f);
    int64_t i = 0;
    for (; i + BLK <= V; i += BLK) {
        float bm = block_max_g(x + i);
        if (bm > thr || n < K) {
            for (int64_t j = i; j < i + BLK; j++) {
                if (x[j] > thr || (n < K && x[j] == x[j])) {
                    cand_insert(c, &n, K, x[j], (int32_t)j);
                    if (n == K) thr = c[K - 1].v;
                }
            }
        }
        if (bm > m) {
            if (m > -INFINITY) {
                float d = m - bm;
                v8sf f = vsplat(sd_v1_exp(d < -87.0f ? -87.0f : d)), vd = vsplat(d);
                t0 = (t0 + s0 * vd) * f;
                t1 = (t1 + s1 * vd) * f;
                s0 *= f;
                s1 *= f;
            }
            m = bm;
        }
        v8sf vm = vsplat(m);
        for (int b = 0; b < BLK; b += 2 * VL) {
            v8sf y0 = vmax(lo, vload(x + i + b) - vm); /* NaN stays NaN */
            v8sf y1 = vmax(lo, vload(x + i + b + VL) - vm);
            v8sf e0 = vexp(y0), e1 = vexp(y1);
            s0 += e0;
            s1 += e1;
            if (with_t) {
                t0 += e0 * y0;
                t1 += e1 * y1;
            }
        }
    }
    double S = (double)hsum(s0) + hsum(s1), T = (double)hsum(t0) + hsum(t1);
    /* the tail, then everything rescaled to the final maximum */
    for (int64_t j = i; j < V; j++) {
        if (x[j] > thr || (n < K && x[j] == x[j])) {
            cand_insert(c, &n, K, x[j], (int32_t)j);
            if (n == K) thr = c[K - 1].v;
        }
    }
    float mf = n > 0 ? c[0].v : m;
    if (mf > m && m > -INFINITY) {
        double d = (double)m - mf, f = exp(d);
        T = f * (T + S * d);
        S *= f;
    } else if (!(m > -INFINITY)) {
        S = T = 0;
    }
    for (int64_t j = i; j < V; j++) {
        float y = x[j] - mf;
        y = y < -87.0f ? -87.0f : y;
        float e = sd_v1_exp(y);
        S += e;
        T += (double)e * y;
    }
    *m_out = mf;
    *s_out = S;
    *t_out = T;
    return n;
}

static int32_t fused_base(const float *x, int64_t V, int32_t K, sd_cand *c, float *m, double *s, double *t) {
    return fused_g(x, V, K, c, m, s, t, 1);
}
static int32_t fused_not_base(const float *x, int64_t V, int32_t K, sd_cand *c, float *m, double *s,
                              double *t) {
    return fused_g(x, V, K, c, m, s, t, 0);
}
static void exp_bins_base(const float *x, int64_t n, float m, float beta, float sc, float *e, int32_t *bin,
                          float *y) {
    exp_bins_g(x, n, m, beta, sc, e, bin, y);
}
static float sample_min_base(const float *x, int64_t V) { return sample_min_g(x, V); }
static double rest_sample_base(const float *x, int64_t V, float m, float beta, float xk) {
    return rest_sample_g(x, V, m, beta, xk);
}
static int64_t collect_bin_base(const float *x, int64_t n, float m, float beta, float sc, int32_t bc,
                                sd_cand *out) {
    return collect_bin_g(x, n, m, beta, sc, bc, out);
}
static float kept_chunk_base(const float *x, const float *e, int64_t n, int32_t base, float tau,
                             int32_t tau_id) {
    return kept_chunk_g(x, e, n, base, tau, tau_id);
}
static void exp_sums_base(const float *x, int64_t V, float m, float beta, double *s, double *t) {
    exp_sums_g(x, V, m, beta, s, t);
}
static float exp_chunk_base(const float *x, int64_t n, float m, float beta) {
    return exp_chunk_g(x, n, m, beta);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SD_AVX2 __attribute__((target("avx2,fma")))
SD_AVX2 static int32_t fused_avx2(const float *x, int64_t V, int32_t K, sd_cand *c, float *m, double *s,
                                  double *t) {
    return fused_g(x, V, K, c, m, s, t, 1);
}
SD_AVX2 static int32_t fused_not_avx2(const float *x, int64_t V, int32_t K, sd_cand *c, float *m, double *s,
                                      double *t) {
    return fused_g(x, V, K, c, m, s, t, 0);
}
SD_AVX2 static void exp_bins_avx2(const float *x, int64_t n, float m, float beta, float sc, float *e,
                                  int32_t *bin, float *y) {
    exp_bins_g(x, n, m, beta, sc, e, bin, y);
}
SD_AVX2 static float sample_min_avx2(const float *x, int64_t V) { return sample_min_g(x, V); }
SD_AVX2 static double rest_sample_avx2(const float *x, int64_t V, float m, float beta, float xk) {
    return rest_sample_g(x, V, m, beta, xk);
}
SD_AVX2 static int64_t collect_bin_avx2(const float *x, int64_t n, float m, float beta, float sc,
                                        int32_t bc, sd_cand *out) {
    return collect_bin_g(x, n, m, beta, sc, bc, out);
}
SD_AVX2 static float kept_chunk_avx2(const float *x, const float *e, int64_t n, int32_t base, float tau,
                                     int32_t tau_id) {
    return kept_chunk_g(x, e, n, base, tau, tau_id);
}
SD_AVX2 static void exp_sums_avx2(const float *x, int64_t V, float m, float beta, double *s,
                                  double *t) {
    exp_sums_g(x, V, m, beta, s, t);
}
SD_AVX2 static float exp_chunk_avx2(const float *x, int64_t n, float m, float beta) {
    return exp_chunk_g(x, n, m, beta);
}
#define DISPATCH(name, ...) (sd_cpu_has(SD_CPU_AVX2 | SD_CPU_FMA) ? name##_avx2(__VA_ARGS__) : name##_base(__VA_ARGS__))
#else
#define DISPATCH(name, ...) name##_base(__VA_ARGS__)
#endif
SD_FP_CONTRACT_FAST_END

/* Sums at inverse temperature beta (the pass-2 sums of a tempered row). */
static void exp_sums_beta(const float *x, int64_t V, float m, float beta, double *s_out,
                          double *t_out) {
    DISPATCH(exp_sums, x, V, m, beta, s_out, t_out);
}

float sd_row_exp_chunk(const float *x, int64_t n, float m, float beta) {
    return DISPATCH(exp_chunk, x, n, m, beta);
}

float sd_row_kept_chunk(const float *x, const float *e, int64_t n, int32_t base, float tau,
                        int32_t tau_id) {
    return DISPATCH(kept_chunk, x, e, n, base, tau, tau_id);
}

int sd_cand_cmp(const void *a, const void *b) {
    const sd_cand *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Apply Dream's top_p then top_k filters to the sorted list c[nc] (the
 * nc best of a row of V; complete when nc == V). beta = 1/T (1 at T = 0),
 * Z = sum over the row of exp(beta (x - m)). Returns 0 and fills *k, or 1
 * when the list is too short to decide. */
static int filter_list(const sd_cand *c, int64_t nc, int64_t V, float m, double beta, double Z,
                       double top_p, int32_t top_k, sd_kept *k) {
    int complete = nc == V;
    int64_t n = nc;
    int filtered = 0;
    if (top_p < 1.0) {
        /* Remove j >= 1 when the cumulative mass of 0..j-1 exceeds top_p. */
        double cum = 0;
        int64_t j = 0;
        for (; j < nc; j++) {
            cum += exp(beta * ((double)c[j].v - m)) / Z;
            if (cum > top_p) break;
        }
        if (j < nc) {
            n = j + 1;
            filtered = 1;
        } else if (!complete) {
            return 1;
        }
    }
    if (top_k > 0 && !filtered && !complete && top_k >= nc) return 1; /* the k-th is past the list */
    if (top_k > 0 && top_k < n) {
        float kth = c[top_k - 1].v;
        int64_t j = top_k;
        while (j < n && c[j].v >= kth) j++;
        if (j == n && n == nc && !complete && !filtered) return 1; /* ties may continue past the list */
        n = j;
        filtered = 1;
    }
    if (!filtered && !complete) {
        k->mode = SD_KEEP_ALL;
        return 0;
    }
    k->mode = SD_KEEP_LIST;
    k->c = c;
    k->n = n;
    return 0;
}


/* The bin of y at sc bins per unit (the float operations of exp_bins_g). */
static inline int hbin(float y, float sc) {
    float f = -y * sc;
    return (int)(f < (float)(HBINS - 1) ? f : (float)(HBINS - 1));
}

/* The probability mass of a row at inverse temperature beta binned by
 * y = beta (x - m) (sc bins per unit of y, bin 0 at the maximum):
 * mass[b] = sum exp(y), tmass[b] = sum exp(y) y (only when with_t), Z the
 * total. e[V] receives every exp(y), so the top-p draw can walk the kept
 * tokens without computing exponentials again. */
typedef struct sd_hist {
    double mass[HBINS], tmass[HBINS];
    double Z;
    float sc; /* bins per unit of y */
    const float *e;
} hist;

static void hist_build(const float *x, int64_t V, float m, float beta, float sc, int with_t, float *e,
                       hist *h) {
    /* bins, then VL slots for the last bin (see exp_bins_g) */
    double mass[HBINS + VL], mass2[HBINS + VL], tmass[HBINS + VL];
    memset(mass, 0, sizeof mass);
    memset(mass2, 0, sizeof mass2);
    if (with_t) memset(tmass, 0, sizeof tmass);
    /* exponentials and bins in vector chunks, then a branch-free scalar
     * scatter; two interleaved accumulators halve the dependency chains of
     * flat rows, whose entries crowd into few bins */
    int32_t bb[256];
    float yb[256];
    for (int64_t c = 0; c < V; c += 256) {
        int64_t n = V - c < 256 ? V - c : 256, nv = n & ~(int64_t)(VL - 1);
        float *ec = e + c;
        DISPATCH(exp_bins, x + c, nv, m, beta, sc, ec, bb, with_t ? yb : NULL);
        for (int64_t j = nv; j < n; j++) { /* the row's last partial vector */
            float y = (x[c + j] - m) * beta;
            yb[j] = y < -HRANGE ? -HRANGE : y;
            ec[j] = sd_v1_exp(yb[j]);
            int b = hbin(yb[j], sc);
            bb[j] = b >= HBINS - 1 ? HBINS : b;
        }
        int64_t j = 0;
        for (; j + 2 <= n; j += 2) {
            mass[bb[j]] += ec[j];
            mass2[bb[j + 1]] += ec[j + 1];
        }
        if (j < n) mass[bb[j]] += ec[j];
        if (with_t)
            for (j = 0; j < n; j++) tmass[bb[j]] += (double)ec[j] * yb[j];
    }
    double Z = 0, lump = 0, tlump = 0;
    for (int b = 0; b < HBINS + VL; b++) mass[b] += mass2[b];
    for (int b = 0; b < HBINS; b++) Z += mass[b];
    for (int b = HBINS; b < HBINS + VL; b++) {
        lump += mass[b];
        if (with_t) tlump += tmass[b];
    }
    /* the last bin's slots back into it */
    memcpy(h->mass, mass, sizeof h->mass);
    if (with_t) memcpy(h->tmass, tmass, sizeof h->tmass);
    h->mass[HBINS - 1] += lump;
    if (with_t) h->tmass[HBINS - 1] += tlump;
    h->Z = Z + lump;
    h->sc = sc;
    h->e = e;
}

/* Bins per unit of y for a row's top-p histogram, which spans [ylo, 0]
 * (everything below falls into the last bin). Any span gives the exact
 * cut; a span fitted to the row keeps the cut's bin small:
 *  - below ylim, every entry has exp(y) <= e^ylim, so all V of them hold at
 *    most half of (1 - top_p) of z_lo, a lower bound on Z (the 64 best's
 *    mass at beta): the cut, where the mass from the top passes top_p Z,
 *    lies above them;
 *  - ymin, the smallest y of a sample of the row, shows where a narrow
 *    row (a random-weight model's logits span a fraction of a nat) ends.
 * ylo is the larger, with a margin, within [-HRANGE, -1e-3]. */
static float hist_scale(int64_t V, double top_p, double z_lo, double ymin) {
    double ylim = log(0.5 * (1.0 - top_p) * z_lo / (double)V);
    double ylo = (ymin > ylim ? ymin : ylim) * 1.0625;
    if (!(ylo > -(double)HRANGE)) ylo = -(double)HRANGE;
    if (ylo > -1e-3) ylo = -1e-3;
    return (float)(HBINS / -ylo);
}

/* (a before b) in the order of a sorted row: value descending, id ascending. */
static inline int cand_before(sd_cand a, sd_cand b) { return a.v > b.v || (a.v == b.v && a.id < b.id); }

static inline void cand_swap(sd_cand *a, sd_cand *b) {
    sd_cand t = *a;
    *a = *b;
    *b = t;
}

/* y = beta (x - m) clamped as the histogram clamps it. */
static inline float clamped_y(float x, float m, float beta) {
    float y = (x - m) * beta;
    return y < -HRANGE ? -HRANGE : y;
}

/* top_p when the 64 best do not reach it (flat rows, high temperature):
 * the histogram h finds the bin where the sorted cumulative mass crosses
 * top_p; only that bin's entries are sorted. One pass and a small sort
 * instead of sorting the row. scratch holds up to V entries. Returns 0
 * when *k is set, 1 (*k left alone) if the cut's bin came out empty, which
 * the exact agreement of hbin and the histogram's bins rules out. */
static int top_p_threshold(const float *x, int64_t V, float m, float beta, double top_p,
                            const hist *h, int with_t, sd_cand *scratch, sd_kept *k) {
    double target = top_p * h->Z, cum = 0, tcum = 0;
    int bc = 0;
    while (bc < HBINS && !(cum + h->mass[bc] > target)) {
        cum += h->mass[bc];
        if (with_t) tcum += h->tmass[bc];
        bc++;
    }
    if (bc == HBINS) { /* rounding: top_p is within float noise of 1 */
        k->mode = SD_KEEP_ALL;
        return 0;
    }
    /* The bin's entries, by the histogram's own bin computation so that
     * membership is exactly the histogram's (a vector pass, then the row's
     * last partial vector). */
    int64_t nv = V & ~(int64_t)(VL - 1);
    int64_t n = DISPATCH(collect_bin, x, nv, m, beta, h->sc, bc, scratch);
    for (int64_t i = nv; i < V; i++) {
        if (hbin(clamped_y(x[i], m, beta), h->sc) == bc) {
            scratch[n].v = x[i];
            scratch[n].id = (int32_t)i;
            n++;
        }
    }
    if (n == 0) return 1; /* cannot happen: the bin holds mass, so entries */
    /* The crossing entry within the bin, in the order (value descending,
     * id ascending), by a quickselect weighted with the entries' mass: each
     * round partitions the range around a pivot and keeps the side where
     * the running mass passes target; the last few entries are sorted and
     * walked. Expected linear time: on very flat rows the bin holds
     * thousands of entries, and sorting them dominated the row. */
    int64_t lo = 0, hi = n, j = -1;
    while (hi - lo > 48) {
        int64_t mid = lo + (hi - lo) / 2;
        sd_cand *a = scratch;
        if (cand_before(a[mid], a[lo])) cand_swap(a + mid, a + lo);
        if (cand_before(a[hi - 1], a[lo])) cand_swap(a + hi - 1, a + lo);
        if (cand_before(a[hi - 1], a[mid])) cand_swap(a + hi - 1, a + mid);
        cand_swap(a + mid, a + hi - 1); /* the median of three is the pivot */
        sd_cand pv = a[hi - 1];
        int64_t q = lo;
        double mb = 0, tb = 0;
        for (int64_t r = lo; r < hi - 1; r++) {
            if (cand_before(a[r], pv)) {
                cand_swap(a + r, a + q);
                float e = h->e[a[q].id];
                mb += e;
                tb += (double)e * clamped_y(a[q].v, m, beta);
                q++;
            }
        }
        cand_swap(a + q, a + hi - 1);
        if (cum + mb > target) {
            hi = q;
            continue;
        }
        cum += mb;
        tcum += tb;
        float ep = h->e[a[q].id];
        cum += ep;
        tcum += (double)ep * clamped_y(a[q].v, m, beta);
        if (cum > target) {
            j = q;
            break;
        }
        lo = q + 1;
    }
    if (j < 0) {
        qsort(scratch + lo, (size_t)(hi - lo), sizeof *scratch, sd_cand_cmp);
        for (j = lo; j < hi; j++) {
            float e = h->e[scratch[j].id]; /* the histogram's own exponential */
            cum += e;
            tcum += (double)e * clamped_y(scratch[j].v, m, beta);
            if (cum > target) break;
        }
        /* rounding: the range's mass fell just short of target; its last
         * entry ends the kept set (and cum holds all of it) */
        if (j == hi) j = hi - 1;
    }
    k->mode = SD_KEEP_ABOVE;
    k->tau = scratch[j].v;
    k->tau_id = scratch[j].id;
    k->Z = cum;
    k->TZ = tcum;
    k->e = h->e;
    return 0;
}

/* ------------------------------------------------------ the row's summary */

size_t sd_row_scratch_bytes(int64_t V, const sd_stats_params *p) {
    size_t n = 0, b;
    if (!(p->top_p < 1.0) && p->top_k <= 0) return 0;
    if (sd_mul_size((size_t)V, sizeof(sd_cand), &b)) return SIZE_MAX;
    n += (b + 63) & ~(size_t)63;
    if (p->top_p < 1.0) {
        if (sd_mul_size((size_t)V, sizeof(float), &b)) return SIZE_MAX;
        n += ((b + 63) & ~(size_t)63) + ((sizeof(hist) + 63) & ~(size_t)63);
    }
    return n;
}

void sd_row_scratch_carve(void *mem, int64_t V, const sd_stats_params *p, sd_row_scratch *out) {
    char *c = mem;
    memset(out, 0, sizeof *out);
    if (!(p->top_p < 1.0) && p->top_k <= 0) return;
    out->sorted = (sd_cand *)c;
    c += ((size_t)V * sizeof(sd_cand) + 63) & ~(size_t)63;
    if (p->top_p < 1.0) {
        out->ebuf = (float *)c;
        c += ((size_t)V * sizeof(float) + 63) & ~(size_t)63;
        out->hist = (hist *)c;
    }
}

/* Whether top_p needs the histogram (the 64 best hold at most top_p of q),
 * decided before Z at temperature T is known: then the histogram pass
 * gives Z as well and replaces the sums pass instead of following it.
 * Bounds decide:
 *  - Jensen (e^(c y) is convex): Z = s E_p[e^((beta - 1) y)] >=
 *    s e^((beta - 1) t / s), y = x - m, when t is at hand;
 *  - at beta <= 1 the list's share of q is at most its share of p
 *    (tempering flattens q), so share <= top_p s suffices.
 * Otherwise (beta > 1, bound not met) a sample of the entries below the
 * list (rest_sample) estimates Z; a wrong guess costs time only. share and
 * share_b are the 64 best's mass at temperature 1 and at T. */
static int flat_for_top_p(const float *x, int64_t V, const sd_row_summary *r, double beta, double top_p,
                          int with_t, double share, double share_b) {
    if (beta <= 1.0) return share <= top_p * r->s;
    double zlo = with_t ? r->s * exp((beta - 1.0) * r->t / r->s) : 0;
    if (share_b <= top_p * zlo) return 1;
    double est = share_b + DISPATCH(rest_sample, x, V, r->m, (float)beta, r->top[r->ntop - 1].v);
    return share_b <= top_p * est;
}

static void build_hist(const float *x, int64_t V, const sd_row_summary *r, const sd_stats_params *p,
                       double beta, double share_b, const sd_row_scratch *scr) {
    float m = r->m;
    hist_build(x, V, m, (float)beta,
               hist_scale(V, p->top_p, share_b, beta * ((double)DISPATCH(sample_min, x, V) - m)),
               p->want_q_entropy, scr->ebuf, scr->hist);
}

/* The support when the candidate list cannot decide it: top-p by the
 * histogram (top-k, if any, then cutting inside the list), else a sort of
 * the whole row. Z is q's normaliser over the row. */
static int32_t filter_slow(const float *x, int64_t V, const sd_stats_params *p, double beta, double Z,
                           int have_hist, double share_b, const sd_row_scratch *scr, sd_row_summary *r) {
    sd_kept *k = &r->kept;
    float m = r->m;
    int32_t ntop = r->ntop;
    if (!scr->sorted || (p->top_p < 1.0 && (!scr->ebuf || !scr->hist))) return SMDIFF_E_NOMEM;
    int done = 0;
    if (p->top_p < 1.0 && p->top_k < ntop - 1) {
        /* The 64 best are all kept by top_p; top_k (if any) then cuts
         * inside them. */
        if (!have_hist) build_hist(x, V, r, p, beta, share_b, scr);
        int fail = top_p_threshold(x, V, m, (float)beta, p->top_p, scr->hist, p->want_q_entropy,
                                   scr->sorted, k);
        done = !fail; /* else the full sort below */
        if (!fail && p->top_k > 0 && k->mode != SD_KEEP_ALL) {
            float kth = r->top[p->top_k - 1].v;
            int64_t j = p->top_k;
            while (j < ntop && r->top[j].v >= kth) j++;
            if (j < ntop) {
                k->mode = SD_KEEP_LIST;
                k->c = r->top;
                k->n = j;
            } else {
                done = 0;
            }
        } else if (!fail && p->top_k > 0) {
            done = 0;
        }
    }
    if (!done) {
        sd_cand *sorted = scr->sorted;
        for (int64_t i = 0; i < V; i++) {
            sorted[i].v = x[i];
            sorted[i].id = (int32_t)i;
        }
        qsort(sorted, (size_t)V, sizeof *sorted, sd_cand_cmp);
        filter_list(sorted, V, V, m, beta, Z, p->top_p, p->top_k, k);
    }
    return SMDIFF_OK;
}

/* Dream's top_p then top_k filters: q's support into r->kept. */
static int32_t apply_filters(const float *x, int64_t V, const sd_stats_params *p, int with_t,
                             const sd_row_scratch *scr, sd_row_summary *r) {
    double beta = p->temperature > 0 ? 1.0 / p->temperature : 1.0;
    float m = r->m;
    double Z = r->s;
    int have_hist = 0;
    double share = 0, share_b = 0;
    if (p->top_p < 1.0)
        for (int32_t i = 0; i < r->ntop; i++) {
            share += exp((double)r->top[i].v - m);
            share_b += exp(beta * ((double)r->top[i].v - m));
        }
    if (p->top_p < 1.0 && scr->ebuf && scr->hist &&
        flat_for_top_p(x, V, r, beta, p->top_p, with_t, share, share_b)) {
        build_hist(x, V, r, p, beta, share_b, scr);
        Z = scr->hist->Z;
        have_hist = 1;
    }
    if (!have_hist && beta != 1.0 && p->top_p < 1.0) {
        double tz;
        exp_sums_beta(x, V, m, (float)beta, &Z, &tz);
    }
    if (!filter_list(r->top, r->ntop, V, m, beta, Z, p->top_p, p->top_k, &r->kept)) return SMDIFF_OK;
    return filter_slow(x, V, p, beta, Z, have_hist, share_b, scr, r);
}

int32_t sd_row_summarize(const float *x, int64_t V, const sd_stats_params *p,
                         const sd_row_scratch *scratch, sd_row_summary *r) {
    /* top_k + 1 candidates show whether the k-th value ties past the list. */
    int32_t K = p->sm_k > 2 ? p->sm_k : 2;
    if (p->top_k > 0 && p->top_k + 1 > K)
        K = p->top_k + 1 < SD_STATS_MAX_K ? p->top_k + 1 : SD_STATS_MAX_K;
    if (p->top_p < 1.0) K = SD_STATS_MAX_K;
    /* t (for H(p), and for sum q log q when q is p) only when wanted */
    int with_t = !p->skip_entropy || (p->want_q_entropy && !(p->temperature > 0 && p->temperature != 1.0));
    r->ntop = with_t ? DISPATCH(fused, x, V, K, r->top, &r->m, &r->s, &r->t)
                     : DISPATCH(fused_not, x, V, K, r->top, &r->m, &r->s, &r->t);
    if (r->ntop == 0 || !isfinite(r->m) || !isfinite(r->s) || !isfinite(r->t)) return SMDIFF_E_NUMERIC;
    memset(&r->kept, 0, sizeof r->kept);
    r->kept.mode = SD_KEEP_ALL;
    if (p->top_p < 1.0 || p->top_k > 0) return apply_filters(x, V, p, with_t, scratch, r);
    return SMDIFF_OK;
}

double sd_row_entropy(const sd_row_summary *r) { return log(r->s) - r->t / r->s; }

void sd_row_softmax_topk(const sd_row_summary *r, int32_t k, int32_t *ids, float *probs) {
    int32_t smk = k < r->ntop ? k : r->ntop;
    for (int32_t i = 0; i < smk; i++) {
        ids[i] = r->top[i].id;
        probs[i] = (float)(exp((double)r->top[i].v - r->m) / r->s);
    }
    for (int32_t i = smk; i < k; i++) {
        ids[i] = r->top[0].id;
        probs[i] = 0.0f;
    }
}

void sd_row_q_sums(const float *x, int64_t V, const sd_row_summary *r, double beta, int want_tz,
                   int sampling, double *Z, double *tz, int64_t *n_kept) {
    const sd_kept *k = &r->kept;
    if (k->mode == SD_KEEP_ALL) {
        *Z = r->s;
        *tz = r->t * beta;
        if (beta != 1.0 && (sampling || want_tz)) exp_sums_beta(x, V, r->m, (float)beta, Z, tz);
        *n_kept = V;
    } else if (k->mode == SD_KEEP_ABOVE) {
        *Z = k->Z;
        *tz = k->TZ;
        *n_kept = r->ntop + 1; /* more than the list: its top two are kept */
    } else {
        double z = 0, t = 0;
        for (int64_t i = 0; i < k->n; i++) {
            double y = beta * ((double)k->c[i].v - r->m), e = exp(y);
            z += e;
            t += e * y;
        }
        *Z = z;
        *tz = t;
        *n_kept = k->n;
    }
}
