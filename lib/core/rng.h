/* rng.h -- Philox4x64-10, a counter-based generator (Salmon et al., SC'11).
 *
 * The stream is a pure function of (key, counter), so it is identical on
 * every platform and compiler, and independent streams come from distinct
 * keys: key = {seed, stream}. The sequential interface reproduces NumPy's
 * numpy.random.Philox(key=seed + (stream << 64)).random_raw() word for word,
 * and sd_rng_uniform matches Generator(Philox(...)).random(); the unit test
 * checks a committed stream produced by NumPy.
 */
#ifndef SD_CORE_RNG_H
#define SD_CORE_RNG_H

#include <stdint.h>

typedef struct sd_rng {
    uint64_t key[2];
    uint64_t ctr[4];
    uint64_t buf[4];
    int pos;  /* next unread word of buf; 4 = empty */
} sd_rng;

/* One Philox4x64-10 block: out = philox(ctr, key). */
void sd_philox4x64(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]);

void sd_rng_init(sd_rng *r, uint64_t seed, uint64_t stream);
uint64_t sd_rng_u64(sd_rng *r);
double sd_rng_uniform(sd_rng *r);       /* [0,1), 53 bits */
float sd_rng_uniformf(sd_rng *r);       /* [0,1), 24 bits */
double sd_rng_normal(sd_rng *r);        /* standard normal (Box-Muller) */
double sd_rng_gumbel(sd_rng *r);        /* standard Gumbel, -log(-log(u)), u in (0,1) */
uint64_t sd_rng_below(sd_rng *r, uint64_t n); /* uniform in [0,n), unbiased; n > 0 */

/* A child generator whose stream depends only on the parent's key and id,
 * not on how much the parent has been used. */
void sd_rng_split(const sd_rng *parent, uint64_t id, sd_rng *child);

#endif
