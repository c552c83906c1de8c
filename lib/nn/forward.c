/* forward.c -- one forward pass of a dream/llada transformer over a canvas
 * of input embeddings, or over some of its rows against cached keys and
 * values, for one sequence or several at once (mdlm's DiT is in dit.c,
 * reached from here, whole canvases only). See transformer.h for shapes.
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

/* Rows of the feed-forward block computed at once: its two [rows, F]
 * activations are the largest per-row scratch, so long canvases run it in
 * balanced chunks of at most this many rows (GEMMs that tall keep BLAS at
 * speed), and scratch stays linear in the canvas with a small slope. */
#define FFN_CHUNK 512

static int64_t ffn_rows(int64_t N) {
    if (N <= FFN_CHUNK) return N;
    int64_t parts = (N + FFN_CHUNK - 1) / FFN_CHUNK;
    return (N + parts - 1) / parts;
}

/* The arena pieces of one forward pass over N rows, in floats. */
typedef struct {
    size_t x, xn, q, k, v, gate, rope, panel, sel, att, pos;
} fwd_layout;

static fwd_layout layout(const sd_hparams *hp, int64_t N, int64_t n_out, int n_threads) {
    int64_t d = hp->n_embd, hd = d / (hp->n_head ? hp->n_head : 1);
    int64_t qd = (int64_t)hp->n_head * hd, kd = (int64_t)hp->n_head_kv * hd;
    int64_t max_cols = d > hp->n_ff ? d : hp->n_ff;
    if (qd > max_cols) max_cols = qd;
    fwd_layout f;
    f.x = (size_t)(N * d);
    f.xn = (size_t)(N * d);
    f.q = (size_t)(N * qd); /* the attention's output overwrites it */
    f.k = (size_t)(N * kd);
    f.v = (size_t)(N * kd);
    f.gate = (size_t)(ffn_rows(N) * hp->n_ff); /* gate and up each */
    f.rope = (size_t)(N * (hd / 2));           /* cos and sin each */
    f.panel = sd_panel_floats(max_cols);
    f.sel = (size_t)(n_out > 0 ? n_out * d : 1);
    f.att = sd_attention_scratch_floats(hd, n_threads);
    f.pos = (size_t)N; /* int32 positions, one float each */
    return f;
}

static size_t round64(size_t floats) { return (floats * sizeof(float) + 63) & ~(size_t)63; }

size_t sd_forward_batch_scratch_bytes(const sd_hparams *hp, int64_t n_total, int64_t n_out, int n_threads) {
    if (!hp || n_total <= 0 || n_out < 0) return 0;
    if (hp->arch == SD_ARCH_MDLM) /* the dit's own, plus the row map of a batch */
        return sd_dit_scratch_bytes(hp, n_total, n_out, n_threads) + round64(n_out > 0 ? (size_t)n_out : 1);
    fwd_layout f = layout(hp, n_total, n_out, n_threads);
    return round64(f.x) + round64(f.xn) + round64(f.q) + round64(f.k) + round64(f.v) + 2 * round64(f.gate) +
           2 * round64(f.rope) + round64(f.panel) + round64(f.sel) + round64(f.att) + round64(f.pos);
}

size_t sd_forward_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows, int n_threads) {
    return sd_forward_batch_scratch_bytes(hp, L, n_rows, n_threads);
}

size_t sd_kv_cache_floats(const sd_hparams *hp, int64_t n_ctx) {
    int64_t hd = hp->n_embd / (hp->n_head ? hp->n_head : 1);
    return 2 * (size_t)hp->n_layer * (size_t)n_ctx * (size_t)(hp->n_head_kv * hd);
}

void sd_kv_cache_init(sd_kv_cache *c, const sd_hparams *hp, float *mem, int64_t n_ctx) {
    c->k = mem;
    c->v = mem + sd_kv_cache_floats(hp, n_ctx) / 2;
    c->n_ctx = n_ctx;
}

/* out[N, n] += b[n] per row. */
static void add_bias(float *out, const sd_weight *b, int64_t N, int64_t n) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < n; j++) out[i * n + j] += bv[j];
}

/* The request checked: every sequence's shape, its rows and cache, the
 * output rows; *n_total receives the rows computed. */
static int32_t check_batch(const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out, int64_t n_out,
                           const float *logits, int64_t *n_total, sd_error *err) {
    int64_t N = 0;
    if (n_seqs <= 0 || !seqs || n_out < 0 || (n_out > 0 && (!out || !logits)))
        return sd_fail(err, SMDIFF_E_INVAL, "sd_forward: invalid argument (%lld sequences, %lld output rows)",
                       (long long)n_seqs, (long long)n_out);
    for (int64_t s = 0; s < n_seqs; s++) {
        const sd_fwd_seq *q = &seqs[s];
        if (q->L <= 0 || !q->embd || q->n <= 0 || q->n > q->L || (!q->pos && q->n != q->L) ||
            (!q->cache && q->pos) || (q->cache && q->cache->n_ctx < q->L))
            return sd_fail(err, SMDIFF_E_INVAL,
                           "sd_forward: invalid sequence %lld (L %lld, %lld rows%s%s)", (long long)s,
                           (long long)q->L, (long long)q->n, q->pos ? ", positions" : "",
                           q->cache ? ", cache" : "");
        for (int64_t i = 0; q->pos && i < q->n; i++)
            if (q->pos[i] < 0 || q->pos[i] >= q->L)
                return sd_fail(err, SMDIFF_E_RANGE, "sd_forward: position %d outside the canvas [0, %lld)",
                               (int)q->pos[i], (long long)q->L);
        N += q->n;
    }
    for (int64_t r = 0; r < n_out; r++)
        if (out[r] < 0 || out[r] >= N)
            return sd_fail(err, SMDIFF_E_RANGE, "sd_forward: output row %d outside the rows computed [0, %lld)", (int)out[r],
                           (long long)N);
    *n_total = N;
    return SMDIFF_OK;
}

/* The activations of one call, carved from the arena. */
typedef struct fwd_bufs {
    float *x, *xn, *q, *k, *v, *gate, *up, *rc, *rs, *panel, *sel, *att;
    int32_t *pos;
    fwd_layout f;
} fwd_bufs;

static int carve(sd_arena *a, fwd_bufs *b) {
    const fwd_layout *f = &b->f;
    b->x = sd_arena_floats(a, f->x), b->xn = sd_arena_floats(a, f->xn);
    b->q = sd_arena_floats(a, f->q), b->k = sd_arena_floats(a, f->k), b->v = sd_arena_floats(a, f->v);
    b->gate = sd_arena_floats(a, f->gate), b->up = sd_arena_floats(a, f->gate);
    b->rc = sd_arena_floats(a, f->rope), b->rs = sd_arena_floats(a, f->rope);
    b->panel = sd_arena_floats(a, f->panel), b->sel = sd_arena_floats(a, f->sel);
    b->att = sd_arena_floats(a, f->att);
    b->pos = (int32_t *)sd_arena_floats(a, f->pos);
    return b->x && b->xn && b->q && b->k && b->v && b->gate && b->up && b->rc && b->rs && b->panel && b->sel &&
           b->att && b->pos;
}

/* The attention block's middle, per sequence: the new keys and values of
 * its rows go into its cache (if it has one), then its queries attend to
 * the keys of the whole canvas -- the cache, or, without one, the rows
 * just computed (all of the canvas). The output overwrites q. */
static void attend(const sd_hparams *hp, const sd_fwd_seq *seqs, int64_t n_seqs, int32_t layer, fwd_bufs *b,
                   int causal, sd_pool *pool) {
    const int64_t H = hp->n_head, Hkv = hp->n_head_kv, hd = hp->n_embd / H, qd = H * hd, kd = Hkv * hd;
    int64_t row0 = 0;
    for (int64_t s = 0; s < n_seqs; s++) {
        const sd_fwd_seq *sq = &seqs[s];
        const float *kp = b->k + row0 * kd, *vp = b->v + row0 * kd;
        if (sq->cache) {
            float *ck = sq->cache->k + (size_t)layer * (size_t)(sq->cache->n_ctx * kd);
            float *cv = sq->cache->v + (size_t)layer * (size_t)(sq->cache->n_ctx * kd);
            for (int64_t i = 0; i < sq->n; i++) {
                int64_t p = sq->pos ? sq->pos[i] : i;
                memcpy(ck + p * kd, kp + i * kd, sizeof(float) * (size_t)kd);
                memcpy(cv + p * kd, vp + i * kd, sizeof(float) * (size_t)kd);
            }
            kp = ck, vp = cv;
        }
        float *qs = b->q + row0 * qd;
        sd_attention(qs, qs, sq->n, sq->pos, kp, vp, sq->L, H, Hkv, hd, causal, b->att, pool);
        row0 += sq->n;
    }
}

/* x[N, d] += down(silu(gate(xn)) * up(xn)), in chunks of rows. */
static void feed_forward(const sd_layer_weights *lw, const sd_hparams *hp, int64_t N, fwd_bufs *b, sd_pool *pool) {
    const int64_t d = hp->n_embd, F = hp->n_ff, C = ffn_rows(N);
    for (int64_t r0 = 0; r0 < N; r0 += C) {
        int64_t n = N - r0 < C ? N - r0 : C;
        const float *xn = b->xn + r0 * d;
        sd_matmul_w(b->gate, F, 0.0f, xn, n, lw->w_gate.type, lw->w_gate.data, F, d, b->panel, b->f.panel, pool);
        sd_matmul_w(b->up, F, 0.0f, xn, n, lw->w_up.type, lw->w_up.data, F, d, b->panel, b->f.panel, pool);
        sd_swiglu(b->gate, b->up, n * F, pool);
        sd_matmul_w(b->x + r0 * d, d, 1.0f, b->gate, n, lw->w_down.type, lw->w_down.data, d, F, b->panel,
                    b->f.panel, pool);
    }
}

/* mdlm: whole canvases, one sequence after another; each run of output
 * rows that belong to one sequence is one pass (a batch asks for its rows
 * in sequence order: one pass per sequence), hidden states of a batch one
 * more pass per sequence. No cache and no partial rows: the conditioning
 * follows each step's noise level. */
static int32_t forward_dit(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                           int64_t n_out, float *logits, float *hidden, const sd_forward_opts *opts,
                           sd_arena *scratch, sd_error *err) {
    for (int64_t s = 0; s < n_seqs; s++)
        if (seqs[s].cache || seqs[s].pos)
            return sd_fail(err, SMDIFF_E_UNSUPPORTED,
                           "sd_forward: an mdlm model computes whole canvases only (sequence %lld asks for %s): its "
                           "conditioning changes with every step's noise level, so cached keys and values do not hold",
                           (long long)s, seqs[s].cache ? "a key/value cache" : "some rows");
    if (n_seqs == 1)
        return sd_dit_forward(w, seqs[0].sigma, seqs[0].embd, seqs[0].L, out, n_out, logits, hidden, opts, scratch,
                              err);
    const int64_t d = w->hp.n_embd, V = w->hp.n_vocab;
    sd_arena_mark mark = sd_arena_save(scratch);
    int32_t *rows = (int32_t *)sd_arena_floats(scratch, n_out > 0 ? (size_t)n_out : 1);
    int32_t rc = rows ? SMDIFF_OK : sd_fail(err, SMDIFF_E_NOMEM, "sd_forward: scratch arena too small");
    for (int64_t r = 0; r < n_out && !rc;) { /* one pass per run of out[] in one sequence */
        int64_t s = 0, row0 = 0, r0 = r;
        while (out[r] >= row0 + seqs[s].L) row0 += seqs[s++].L;
        for (; r < n_out && out[r] >= row0 && out[r] < row0 + seqs[s].L; r++) rows[r] = out[r] - (int32_t)row0;
        rc = sd_dit_forward(w, seqs[s].sigma, seqs[s].embd, seqs[s].L, rows + r0, r - r0, logits + r0 * V, NULL,
                            opts, scratch, err);
    }
    for (int64_t s = 0, row0 = 0; hidden && s < n_seqs && !rc; row0 += seqs[s++].L)
        rc = sd_dit_forward(w, seqs[s].sigma, seqs[s].embd, seqs[s].L, NULL, 0, NULL, hidden + row0 * d, opts,
                            scratch, err);
    sd_arena_restore(scratch, mark);
    return rc;
}

static int32_t forward_batch(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                             int64_t n_out, float *logits, float *hidden, const sd_forward_opts *opts,
                             sd_arena *scratch, sd_error *err);

int32_t sd_forward_batch(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                         int64_t n_out, float *logits, float *hidden, const sd_forward_opts *opts,
                         sd_arena *scratch, sd_error *err) {
    /* BLAS buffers of new OpenBLAS workers are checked against the memory
     * limit around every forward (blas.h) */
    int32_t rc = sd_blas_enter(err);
    if (rc) return rc;
    rc = forward_batch(w, seqs, n_seqs, out, n_out, logits, hidden, opts, scratch, err);
    sd_blas_leave();
    return rc;
}

static int32_t forward_batch(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                             int64_t n_out, float *logits, float *hidden, const sd_forward_opts *opts,
                             sd_arena *scratch, sd_error *err) {
    /* rows of seqs (N in all, stacked in order) -> logits[n_out, V] of stacked rows out[],
     * hidden[N, d] (optional); the caches' rows at the sequences' positions written */
    const sd_hparams *hp = &w->hp;
    int64_t N = 0;
    int32_t rc = check_batch(seqs, n_seqs, out, n_out, logits, &N, err);
    if (rc) return rc;
    if (!scratch) return sd_fail(err, SMDIFF_E_INVAL, "sd_forward: no scratch arena");
    if (hp->arch == SD_ARCH_MDLM) return forward_dit(w, seqs, n_seqs, out, n_out, logits, hidden, opts, scratch, err);
    sd_forward_opts none = {0, NULL, NULL, NULL};
    if (!opts) opts = &none;
    sd_pool *pool = opts->pool;
    const int64_t d = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, hd = d / H;
    const int64_t qd = H * hd, kd = Hkv * hd, V = hp->n_vocab;
    const int n_threads = pool ? sd_pool_threads(pool) : 1;

    sd_arena_mark mark = sd_arena_save(scratch);
    fwd_bufs b;
    b.f = layout(hp, N, n_out, n_threads);
    if (!carve(scratch, &b)) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_NOMEM, "sd_forward: scratch arena too small for %lld rows (needs %zu bytes)",
                       (long long)N, sd_forward_batch_scratch_bytes(hp, N, n_out, n_threads));
    }
    /* The rows' input embeddings and canvas positions, stacked. */
    for (int64_t s = 0, r = 0; s < n_seqs; s++)
        for (int64_t i = 0; i < seqs[s].n; i++, r++) {
            b.pos[r] = seqs[s].pos ? seqs[s].pos[i] : (int32_t)i;
            memcpy(b.x + r * d, seqs[s].embd + (int64_t)b.pos[r] * d, sizeof(float) * (size_t)d);
        }
    /* dream and Hugging Face layouts rotate half-split pairs; a llama.cpp
     * LLaDA file has Q/K rows permuted so adjacent pairs give the same result. */
    const int neox = !(hp->arch == SD_ARCH_LLADA && hp->rope_permuted);
    sd_rope_table(b.rc, b.rs, b.pos, N, hd, hp->rope_base);

    for (int32_t il = 0; il < hp->n_layer; il++) {
        if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
            sd_arena_restore(scratch, mark);
            return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before layer %d", (int)il);
        }
        const sd_layer_weights *lw = &w->layers[il];

        /* attention block: x += wo(attn(rope(q), rope(k), v)) */
        sd_rmsnorm(b.xn, b.x, lw->attn_norm.data, N, d, hp->norm_eps, pool);
        sd_matmul_w(b.q, qd, 0.0f, b.xn, N, lw->wq.type, lw->wq.data, qd, d, b.panel, b.f.panel, pool);
        sd_matmul_w(b.k, kd, 0.0f, b.xn, N, lw->wk.type, lw->wk.data, kd, d, b.panel, b.f.panel, pool);
        sd_matmul_w(b.v, kd, 0.0f, b.xn, N, lw->wv.type, lw->wv.data, kd, d, b.panel, b.f.panel, pool);
        add_bias(b.q, &lw->bq, N, qd);
        add_bias(b.k, &lw->bk, N, kd);
        add_bias(b.v, &lw->bv, N, kd);
        sd_rope(b.q, N, H, hd, qd, b.rc, b.rs, neox, pool);
        sd_rope(b.k, N, Hkv, hd, kd, b.rc, b.rs, neox, pool);
        attend(hp, seqs, n_seqs, il, &b, opts->causal, pool);
        sd_matmul_w(b.x, d, 1.0f, b.q, N, lw->wo.type, lw->wo.data, d, qd, b.panel, b.f.panel, pool);

        /* feed-forward block: x += down(silu(gate(xn)) * up(xn)) */
        sd_rmsnorm(b.xn, b.x, lw->ffn_norm.data, N, d, hp->norm_eps, pool);
        feed_forward(lw, hp, N, &b, pool);
    }
    if (opts->abort_fn && opts->abort_fn(opts->abort_ud)) {
        sd_arena_restore(scratch, mark);
        return sd_fail(err, SMDIFF_E_ABORTED, "forward pass aborted before the output head");
    }

    sd_rmsnorm(b.x, b.x, w->output_norm.data, N, d, hp->norm_eps, pool);
    if (hidden) memcpy(hidden, b.x, (size_t)(N * d) * sizeof(float));
    if (n_out > 0) {
        /* Only the requested rows go through the (large) output head. */
        for (int64_t r = 0; r < n_out; r++)
            memcpy(b.sel + r * d, b.x + (int64_t)out[r] * d, (size_t)d * sizeof(float));
        sd_matmul_w(logits, V, 0.0f, b.sel, n_out, w->output.type, w->output.data, V, d, b.panel, b.f.panel, pool);
    }
    sd_arena_restore(scratch, mark);
    return SMDIFF_OK;
}

int32_t sd_forward(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows, int64_t n_rows,
                   float *logits, float *hidden, const sd_forward_opts *opts, sd_arena *scratch, sd_error *err) {
    return sd_forward_sigma(w, 0.0f, embd, L, rows, n_rows, logits, hidden, opts, scratch, err);
}

int32_t sd_forward_sigma(const sd_weights *w, float sigma, const float *embd, int64_t L, const int32_t *rows,
                         int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                         sd_arena *scratch, sd_error *err) {
    /* embd[L, d], rows[n_rows] -> logits[n_rows, V], hidden[L, d] (optional) */
    if (L <= 0 || n_rows < 0 || (n_rows > 0 && (!rows || !logits)) || !embd || !scratch)
        return sd_fail(err, SMDIFF_E_INVAL, "sd_forward: invalid argument (L %lld, n_rows %lld)", (long long)L,
                       (long long)n_rows);
    sd_fwd_seq one = {embd, L, NULL, L, NULL, sigma};
    return sd_forward_batch(w, &one, 1, rows, n_rows, logits, hidden, opts, scratch, err);
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
