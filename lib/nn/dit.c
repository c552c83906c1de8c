/* dit.c -- the forward pass of MDLM's DiT backbone (architecture `mdlm`),
 * over a canvas of input embeddings, as docs/MODELS.md describes it:
 *
 *   c       = silu(fc2(silu(fc1([cos(sigma f), sin(sigma f)]))))   [C]
 *             f_i = 10000^(-i / (T/2)), i < T/2 (timestep features)
 *   per block, (sa, ca, ga, sf, cf, gf) = adaln(c) (six [d] chunks):
 *     h  = LN(x) * w_attn * (1 + ca) + sa        LN: no bias, eps 1e-5
 *     x += ga * wo(attn(rope(wq h), rope(wk h), wv h))   bidirectional,
 *                                                   half-split RoPE
 *     h  = LN(x) * w_ffn * (1 + cf) + sf
 *     x += gf * (down(gelu_tanh(up h + b_up)) + b_down)
 *   (s, c2) = output_adaln(c);  logits = (LN(x) w_out (1 + c2) + s) W^T + b
 *   logits[mask_id] += SD_DIT_MASK_LOGIT  (MDLM's "subs" output)
 *
 * Without time conditioning c is constant and every adaLN output is
 * computed once at load (w->cond_const); with it, per call from sigma.
 * Every product goes through sd_matmul_w and the attention through
 * sd_attention, the kernels the other architectures use.
 */
#include <math.h>
#include <string.h>

#include "core/vecmath.h"
#include "ops.h"
#include "smdiff/smdiff.h"
#include "transformer.h"

size_t sd_dit_cond_floats(const sd_hparams *hp) {
    return (size_t)hp->n_layer * 6 * (size_t)hp->n_embd + 2 * (size_t)hp->n_embd;
}

static int64_t max3(int64_t a, int64_t b, int64_t c) {
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

size_t sd_dit_cond_scratch(const sd_hparams *hp) {
    return (size_t)hp->n_freq + 2 * (size_t)hp->n_cond + sd_panel_floats(max3(hp->n_freq, hp->n_cond, 1));
}

static void add_row_bias(float *out, const sd_weight *b, int64_t M, int64_t n) {
    /* out[M, n] += b[n] per row */
    const float *bv = b->data;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < n; j++) out[i * n + j] += bv[j];
}

static void silu_inplace(float *x, int64_t n) {
    for (int64_t j = 0; j < n; j++) x[j] = sd_siluf(x[j]);
}

/* out[n] = b[n] + c[C] @ W[n, C]^T */
static void linear1(float *out, const float *c, const sd_weight *W, const sd_weight *b, float *panel,
                    size_t panel_floats) {
    sd_matmul_w(out, W->rows, 0.0f, c, 1, W->type, W->data, W->rows, W->cols, panel, panel_floats, NULL);
    add_row_bias(out, b, 1, W->rows);
}

void sd_dit_conditioning(const sd_weights *w, float sigma, float *out, float *scratch) {
    /* out [n_layer * 6d + 2d]; scratch [T + 2C + panel] */
    const sd_hparams *hp = &w->hp;
    const int64_t T = hp->n_freq, C = hp->n_cond, d = hp->n_embd, half = T / 2;
    float *tf = scratch, *h = scratch + T, *c = h + C, *panel = c + C;
    size_t pf = sd_panel_floats(max3(T, C, 1));
    for (int64_t i = 0; i < half; i++) {
        double arg = (double)sigma * exp(-log(10000.0) * (double)i / (double)half);
        tf[i] = (float)cos(arg);
        tf[half + i] = (float)sin(arg);
    }
    linear1(h, tf, &w->time_fc1, &w->time_fc1_b, panel, pf);
    silu_inplace(h, C);
    linear1(c, h, &w->time_fc2, &w->time_fc2_b, panel, pf);
    silu_inplace(c, C);
    for (int32_t l = 0; l < hp->n_layer; l++)
        linear1(out + (int64_t)l * 6 * d, c, &w->layers[l].adaln, &w->layers[l].adaln_b, panel, pf);
    linear1(out + (int64_t)hp->n_layer * 6 * d, c, &w->output_adaln, &w->output_adaln_b, panel, pf);
}

/* The arena pieces of one forward pass, in floats. */
typedef struct {
    size_t x, xn, q, k, v, att, scores, up, rope, panel, sel, cond, cscratch;
} dit_layout;

static dit_layout layout(const sd_hparams *hp, int64_t L, int64_t n_rows, int n_threads) {
    const int64_t d = hp->n_embd, hd = d / (hp->n_head ? hp->n_head : 1);
    dit_layout f;
    f.x = f.xn = f.q = f.k = f.v = f.att = (size_t)(L * d);
    f.scores = sd_attention_scratch_floats(hd, n_threads);
    f.up = (size_t)(L * hp->n_ff);
    f.rope = (size_t)(L * (hd / 2));
    f.panel = sd_panel_floats(d > hp->n_ff ? d : hp->n_ff);
    f.sel = (size_t)(n_rows * d);
    /* the conditioning, when it is not precomputed (time conditioning, or
     * weights that do not come from a loaded model) */
    f.cond = sd_dit_cond_floats(hp);
    f.cscratch = sd_dit_cond_scratch(hp);
    return f;
}

static size_t round64(size_t floats) { return ((floats ? floats : 1) * sizeof(float) + 63) & ~(size_t)63; }

size_t sd_dit_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows, int n_threads) {
    dit_layout f = layout(hp, L, n_rows, n_threads);
    return round64(f.x) + round64(f.xn) + round64(f.q) + round64(f.k) + round64(f.v) + round64(f.att) +
           round64(f.scores) + round64(f.up) + 2 * round64(f.rope) + round64(f.panel) + round64(f.sel) +
           round64(f.cond) + round64(f.cscratch);
}

/* x[L, d] += g[d] * y[L, d] per row (the gated residual). */
static void gated_add(float *x, const float *g, const float *y, int64_t L, int64_t d) {
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < d; j++) x[i * d + j] += g[j] * y[i * d + j];
}

/* out[L, n] = x[L, k] @ W^T (+ b). */
static void mm(float *out, const float *x, int64_t L, const sd_weight *W, const sd_weight *b, float *panel,
               size_t pf, sd_pool *pool) {
    sd_matmul_w(out, W->rows, 0.0f, x, L, W->type, W->data, W->rows, W->cols, panel, pf, pool);
    if (b && b->data) add_row_bias(out, b, L, W->rows);
}

int32_t sd_dit_forward(const sd_weights *w, float sigma, const float *embd, int64_t L, const int32_t *rows,
                       int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                       sd_arena *scratch, sd_error *err) {
    /* embd[L, d], rows[n_rows] -> logits[n_rows, V], hidden[L, d] (optional);
     * arguments checked by sd_forward */
    const sd_hparams *hp = &w->hp;
    sd_pool *pool = opts->pool;
    const int64_t d = hp->n_embd, H = hp->n_head, hd = d / H, F = hp->n_ff, V = hp->n_vocab;
    const int n_threads = pool ? sd_pool_threads(pool) : 1;
    dit_layout f = layout(hp, L, n_rows, n_threads);

    sd_arena_mark mark = sd_arena_save(scratch);
    float *x = sd_arena_floats(scratch, f.x), *xn = sd_arena_floats(scratch, f.xn);
    float *q = sd_arena_floats(scratch, f.q), *k = sd_arena_floats(scratch, f.k);
    float *v = sd_arena_floats(scratch, f.v), *att = sd_arena_floats(scratch, f.att);
    float *scores = sd_arena_floats(scratch, f.scores), *up = sd_arena_floats(scratch, f.up);
    float *rc = sd_arena_floats(scratch, f.rope), *rs = sd_arena_floats(scratch, f.rope);
    float *panel = sd_arena_floats(scratch, f.panel), *sel = sd_arena_floats(scratch, f.sel ? f.sel : 1);
    float *cond = sd_arena_floats(scratch, f.cond);
    float *cscr = sd_arena_floats(scratch, f.cscratch);
    if (!x || !xn || !q || !k || !v || !att || !scores || !up || !rc || !rs || !panel || !sel || !cond || !cscr) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_NOMEM, "sd_forward: scratch arena too small for L = %lld (needs %zu bytes)",
                       (long long)L, sd_dit_scratch_bytes(hp, L, n_rows, n_threads));
    }
    const float *cv = w->cond_const;
    if (hp->time_cond || !cv) {
        sd_dit_conditioning(w, hp->time_cond ? sigma : 0.0f, cond, cscr);
        cv = cond;
    }
    const size_t pf = f.panel;
    sd_rope_table(rc, rs, NULL, L, hd, hp->rope_base);
    memcpy(x, embd, (size_t)(L * d) * sizeof(float));

    for (int32_t il = 0; il < hp->n_layer; il++) {
        if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
            sd_arena_restore(scratch, mark);
            return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before layer %d", (int)il);
        }
        const sd_layer_weights *lw = &w->layers[il];
        const float *m = cv + (int64_t)il * 6 * d; /* shift, scale, gate (attention), then (MLP) */

        /* attention block: x += gate_a * wo(attn(rope(q), rope(k), v)) */
        sd_layernorm_mod(xn, x, lw->attn_norm.data, m, m + d, L, d, hp->norm_eps, pool);
        mm(q, xn, L, &lw->wq, NULL, panel, pf, pool);
        mm(k, xn, L, &lw->wk, NULL, panel, pf, pool);
        mm(v, xn, L, &lw->wv, NULL, panel, pf, pool);
        sd_rope(q, L, H, hd, d, rc, rs, 1, pool);
        sd_rope(k, L, H, hd, d, rc, rs, 1, pool);
        sd_attention(att, q, L, NULL, k, v, L, H, H, hd, opts->causal, scores, pool);
        mm(xn, att, L, &lw->wo, NULL, panel, pf, pool);
        gated_add(x, m + 2 * d, xn, L, d);

        /* MLP block: x += gate_f * (down(gelu(up(h) + b_up)) + b_down) */
        sd_layernorm_mod(xn, x, lw->ffn_norm.data, m + 3 * d, m + 4 * d, L, d, hp->norm_eps, pool);
        mm(up, xn, L, &lw->w_up, &lw->b_up, panel, pf, pool);
        sd_gelu_tanh(up, L * F, pool);
        mm(xn, up, L, &lw->w_down, &lw->b_down, panel, pf, pool);
        gated_add(x, m + 5 * d, xn, L, d);
    }
    if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before the output head");
    }
    const float *mo = cv + (int64_t)hp->n_layer * 6 * d;
    sd_layernorm_mod(x, x, w->output_norm.data, mo, mo + d, L, d, hp->norm_eps, pool);
    if (hidden) memcpy(hidden, x, (size_t)(L * d) * sizeof(float));
    if (n_rows > 0) {
        for (int64_t r = 0; r < n_rows; r++) memcpy(sel + r * d, x + (int64_t)rows[r] * d, (size_t)d * sizeof(float));
        mm(logits, sel, n_rows, &w->output, &w->output_b, panel, pf, pool);
        if (hp->mask_id >= 0 && hp->mask_id < V)
            for (int64_t r = 0; r < n_rows; r++) logits[r * V + hp->mask_id] += SD_DIT_MASK_LOGIT;
    }
    sd_arena_restore(scratch, mark);
    return SMDIFF_OK;
}
