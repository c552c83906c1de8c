#include <math.h>

#include "rng.h"

#define PHILOX_M0 0xD2E7470EE14C6C93ULL
#define PHILOX_M1 0xCA5A826395121157ULL
#define PHILOX_W0 0x9E3779B97F4A7C15ULL
#define PHILOX_W1 0xBB67AE8584CAA73BULL

/* 64x64 -> 128 multiply without relying on __int128, so every compiler
 * gives the same words. */
static inline uint64_t mulhilo64(uint64_t a, uint64_t b, uint64_t *hi) {
    uint64_t a_lo = (uint32_t)a, a_hi = a >> 32;
    uint64_t b_lo = (uint32_t)b, b_hi = b >> 32;
    uint64_t p0 = a_lo * b_lo;
    uint64_t p1 = a_lo * b_hi;
    uint64_t p2 = a_hi * b_lo;
    uint64_t p3 = a_hi * b_hi;
    uint64_t mid = (p0 >> 32) + (uint32_t)p1 + (uint32_t)p2;
    *hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
    return (mid << 32) | (uint32_t)p0;
}

void sd_philox4x64(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]) {
    uint64_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint64_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t hi0, hi1;
        uint64_t lo0 = mulhilo64(PHILOX_M0, c0, &hi0);
        uint64_t lo1 = mulhilo64(PHILOX_M1, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void sd_rng_init(sd_rng *r, uint64_t seed, uint64_t stream) {
    r->key[0] = seed;
    r->key[1] = stream;
    r->ctr[0] = r->ctr[1] = r->ctr[2] = r->ctr[3] = 0;
    r->pos = 4;
}

uint64_t sd_rng_u64(sd_rng *r) {
    if (r->pos < 4) return r->buf[r->pos++];
    /* Increment first, as NumPy does, so the first block uses counter 1. */
    for (int i = 0; i < 4 && ++r->ctr[i] == 0; i++) {
    }
    sd_philox4x64(r->ctr, r->key, r->buf);
    r->pos = 1;
    return r->buf[0];
}

double sd_rng_uniform(sd_rng *r) { return (double)(sd_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float sd_rng_uniformf(sd_rng *r) { return (float)(sd_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double sd_rng_normal(sd_rng *r) {
    double u1;
    do {
        u1 = sd_rng_uniform(r);
    } while (u1 <= 0.0);
    double u2 = sd_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double sd_rng_gumbel(sd_rng *r) {
    double u;
    do {
        u = sd_rng_uniform(r);
    } while (u <= 0.0);
    return -log(-log(u));
}

uint64_t sd_rng_below(sd_rng *r, uint64_t n) {
    /* Rejection: discard the top partial range so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
    uint64_t x;
    do {
        x = sd_rng_u64(r);
    } while (x > limit);
    return x % n;
}

void sd_rng_split(const sd_rng *parent, uint64_t id, sd_rng *child) {
    /* Derive the child's key by encrypting (id, tag) under the parent's key. */
    uint64_t ctr[4] = {id, 0x736d646966662d73ULL /* "smdiff-s" */, 0, 0};
    uint64_t out[4];
    sd_philox4x64(ctr, parent->key, out);
    sd_rng_init(child, out[0], out[1]);
}
