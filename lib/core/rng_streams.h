/* rng_streams.h -- the registry of random streams: every stream identifier
 * smdiff draws from, in one place.
 *
 * All randomness is Philox4x64-10 (core/rng.h), a pure function of a key
 * and a counter. sd_rng_init(r, seed, stream) keys a sequential generator
 * with {seed, stream}; the per-row sampling draws key Philox directly with
 * {seed, SD_STREAM_STATS_KEY} and count with (global step, row). A stream
 * identifier therefore names an independent sequence for a given seed, and
 * two uses with the same identifier and seed draw the same numbers.
 *
 * The values are fixed: changing one changes every seeded result
 * (generations, training runs, evaluations and the tests that pin them).
 * Add new streams here, outside the ranges already taken:
 *
 *   identifier                       value                 user
 *   SD_STREAM_TRAIN                  0                     trainer: batch windows, masks, t, SM coin
 *   SD_STREAM_TRAIN_INIT             1                     weights of a model trained from scratch
 *   SD_STREAM_TRAIN_EVAL             0xE7A1                trainer: held-out loss windows
 *   SD_STREAM_KMEANS(r)              r = 0, 1, ...         MAUVE k-means++ seeding, restart r
 *   SD_STREAM_EVAL_WINDOW(i)         i + 1                 validation bound, window i
 *   SD_STREAM_STATS_KEY              0x5354415453 "STATS"  per-row sampling draws (key word)
 *   SD_STREAM_DECODER(g)             2^40 + g              decoder strategy at global step g
 *
 * Known overlaps, kept because moving them would change existing results:
 * SD_STREAM_KMEANS(0) == SD_STREAM_TRAIN, SD_STREAM_KMEANS(1) ==
 * SD_STREAM_EVAL_WINDOW(0) == SD_STREAM_TRAIN_INIT, and the small ranged
 * streams would reach the fixed ones after 0xE7A0 windows or restarts.
 * They share numbers only under the same seed, and feed unrelated
 * computations (a MAUVE clustering, a weight initialisation, a bound
 * evaluation), so no result depends on two of them jointly.
 */
#ifndef SD_CORE_RNG_STREAMS_H
#define SD_CORE_RNG_STREAMS_H

#include <stdint.h>

#define SD_STREAM_TRAIN UINT64_C(0)
#define SD_STREAM_TRAIN_INIT UINT64_C(1)
#define SD_STREAM_TRAIN_EVAL UINT64_C(0xE7A1)
#define SD_STREAM_KMEANS(restart) ((uint64_t)(restart))
#define SD_STREAM_EVAL_WINDOW(window) ((uint64_t)(window) + 1)
#define SD_STREAM_STATS_KEY UINT64_C(0x5354415453) /* "STATS" */
#define SD_STREAM_DECODER_BASE (UINT64_C(1) << 40)
#define SD_STREAM_DECODER(step) (SD_STREAM_DECODER_BASE + (uint64_t)(step))

/* The decoder's range lies above every other identifier. */
_Static_assert(SD_STREAM_STATS_KEY < SD_STREAM_DECODER_BASE, "stream ranges overlap");
_Static_assert(SD_STREAM_TRAIN_EVAL < SD_STREAM_DECODER_BASE, "stream ranges overlap");
/* The trainer's three streams are distinct for one seed. */
_Static_assert(SD_STREAM_TRAIN != SD_STREAM_TRAIN_INIT && SD_STREAM_TRAIN != SD_STREAM_TRAIN_EVAL &&
                   SD_STREAM_TRAIN_INIT != SD_STREAM_TRAIN_EVAL,
               "trainer streams collide");

#endif
