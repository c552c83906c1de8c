/* checksum.c -- XXH3-64 through xxHash's header-only build; see checksum.h. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checksum.h"

_Static_assert(sizeof(XXH3_state_t) <= sizeof(((sd_hash *)0)->state), "sd_hash holds an XXH3_state_t");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "sd_hash is aligned for an XXH3_state_t");

void sd_hash_reset(sd_hash *h) { XXH3_64bits_reset((XXH3_state_t *)(void *)h->state); }

void sd_hash_update(sd_hash *h, const void *data, size_t n) {
    if (n) XXH3_64bits_update((XXH3_state_t *)(void *)h->state, data, n);
}

uint64_t sd_hash_digest(const sd_hash *h) { return XXH3_64bits_digest((const XXH3_state_t *)(const void *)h->state); }

uint64_t sd_hash64(const void *data, size_t n) { return XXH3_64bits(data, n); }
