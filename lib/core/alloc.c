#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

static void *default_alloc(size_t size, void *ud) {
    (void)ud;
    return malloc(size);
}

static void default_free(void *p, void *ud) {
    (void)ud;
    free(p);
}

static smdiff_alloc_fn hook_alloc = default_alloc;
static smdiff_free_fn hook_free = default_free;
static void *hook_ud = NULL;
static atomic_llong live_blocks = 0;

/* Header stored in the SD_ALIGN bytes before each returned block. */
typedef struct {
    void *base;   /* what the hook returned */
    size_t size;  /* user size */
} block_header;

_Static_assert(sizeof(block_header) <= SD_ALIGN, "header must fit the alignment pad");

SMDIFF_API int32_t smdiff_set_allocator(smdiff_alloc_fn alloc, smdiff_free_fn release,
                                        void *user_data) {
    if ((alloc == NULL) != (release == NULL))
        return sd_fail(NULL, SMDIFF_E_INVAL, "allocator hooks must be both set or both NULL");
    if (atomic_load(&live_blocks) != 0)
        return sd_fail(NULL, SMDIFF_E_STATE,
                       "cannot change the allocator while %lld smdiff allocations are live",
                       (long long)atomic_load(&live_blocks));
    hook_alloc = alloc ? alloc : default_alloc;
    hook_free = release ? release : default_free;
    hook_ud = alloc ? user_data : NULL;
    return SMDIFF_OK;
}

void *sd_malloc(size_t size) {
    if (size > SIZE_MAX - 2 * SD_ALIGN) return NULL;
    char *base = hook_alloc(size + 2 * SD_ALIGN, hook_ud);
    if (!base) return NULL;
    /* First aligned address that leaves a full SD_ALIGN pad for the header. */
    uintptr_t user = ((uintptr_t)base + 2 * SD_ALIGN - 1) & ~(uintptr_t)(SD_ALIGN - 1);
    block_header *h = (block_header *)(user - SD_ALIGN);
    h->base = base;
    h->size = size;
    atomic_fetch_add(&live_blocks, 1);
    return (void *)user;
}

void *sd_calloc(size_t n, size_t size) {
    size_t total;
    if (sd_mul_size(n, size, &total)) return NULL;
    void *p = sd_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void sd_free(void *ptr) {
    if (!ptr) return;
    block_header *h = (block_header *)((char *)ptr - SD_ALIGN);
    atomic_fetch_sub(&live_blocks, 1);
    hook_free(h->base, hook_ud);
}

void *sd_realloc(void *ptr, size_t size) {
    if (!ptr) return sd_malloc(size);
    block_header *h = (block_header *)((char *)ptr - SD_ALIGN);
    void *fresh = sd_malloc(size);
    if (!fresh) return NULL;
    memcpy(fresh, ptr, h->size < size ? h->size : size);
    sd_free(ptr);
    return fresh;
}

char *sd_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sd_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *sd_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = sd_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int64_t sd_alloc_live(void) { return (int64_t)atomic_load(&live_blocks); }
