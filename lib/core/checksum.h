/* checksum.h -- XXH3 64-bit hashes (xxHash, Debian libxxhash-dev) of files
 * and buffers, for the checksums smdiff writes into its files and checks
 * when reading them (docs/FORMATS.md, "Checksums").
 *
 * The state lives in the caller's storage (no allocation): the xxHash
 * header is compiled inline in checksum.c (XXH_INLINE_ALL), so no part of
 * its state layout crosses a library boundary.
 */
#ifndef SD_CORE_CHECKSUM_H
#define SD_CORE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_hash {
    _Alignas(64) unsigned char state[640]; /* an XXH3_state_t */
} sd_hash;

void sd_hash_reset(sd_hash *h);
void sd_hash_update(sd_hash *h, const void *data, size_t n);
uint64_t sd_hash_digest(const sd_hash *h);

/* One-shot XXH3-64 of data[n]. */
uint64_t sd_hash64(const void *data, size_t n);

#endif
