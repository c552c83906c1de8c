/* alloc.h -- every heap allocation smdiff makes goes through here, and so
 * through the host's hooks (smdiff_set_allocator).
 *
 * Blocks are 64-byte aligned (cache line, AVX-512 vector) whatever the hook
 * returns, and carry their size so sd_realloc works with hooks that offer
 * only alloc/free.
 */
#ifndef SD_CORE_ALLOC_H
#define SD_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define SD_ALIGN 64

void *sd_malloc(size_t size);            /* NULL on failure or size overflow */
void *sd_calloc(size_t n, size_t size);  /* zeroed; NULL on overflow */
void *sd_realloc(void *ptr, size_t size);/* like realloc; ptr kept on failure */
void sd_free(void *ptr);                 /* accepts NULL */
char *sd_strdup(const char *s);          /* NULL on failure */
char *sd_path_join(const char *dir, const char *name); /* "dir/name"; NULL on failure */

/* Number of live sd_* blocks (for the allocator-swap guard and tests). */
int64_t sd_alloc_live(void);

/* a*b without overflow: returns 0 and sets *out, or -1 on overflow. */
static inline int sd_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

#endif
