#include <stdint.h>

#include "alloc.h"
#include "arena.h"

struct sd_arena_block {
    sd_arena_block *prev;
    size_t capacity;
    size_t offset;
    unsigned char *data;  /* SD_ALIGN-aligned */
};

static sd_arena_block *block_new(size_t capacity) {
    sd_arena_block *b = sd_malloc(sizeof *b);
    if (!b) return NULL;
    b->data = sd_malloc(capacity ? capacity : 1);
    if (!b->data) {
        sd_free(b);
        return NULL;
    }
    b->prev = NULL;
    b->capacity = capacity;
    b->offset = 0;
    return b;
}

int sd_arena_init(sd_arena *a, size_t capacity, int growable) {
    a->head = block_new(capacity);
    a->block_size = capacity;
    a->growable = growable;
    a->high_water = 0;
    a->used_total = 0;
    return a->head ? 0 : -1;
}

void sd_arena_destroy(sd_arena *a) {
    sd_arena_block *b = a->head;
    while (b) {
        sd_arena_block *prev = b->prev;
        sd_free(b->data);
        sd_free(b);
        b = prev;
    }
    a->head = NULL;
}

void *sd_arena_alloc(sd_arena *a, size_t size) {
    if (!a->head) return NULL;
    if (size > SIZE_MAX - SD_ALIGN) return NULL;
    size_t rounded = (size + SD_ALIGN - 1) & ~(size_t)(SD_ALIGN - 1);
    sd_arena_block *b = a->head;
    if (rounded > b->capacity - b->offset) {
        if (!a->growable) return NULL;
        size_t cap = rounded > a->block_size ? rounded : a->block_size;
        sd_arena_block *nb = block_new(cap);
        if (!nb) return NULL;
        nb->prev = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->offset;
    b->offset += rounded;
    a->used_total += rounded;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return p;
}

float *sd_arena_floats(sd_arena *a, size_t n) {
    size_t bytes;
    if (sd_mul_size(n, sizeof(float), &bytes)) return NULL;
    return sd_arena_alloc(a, bytes);
}

sd_arena_mark sd_arena_save(const sd_arena *a) {
    sd_arena_mark m = {a->head, a->head ? a->head->offset : 0, a->used_total};
    return m;
}

void sd_arena_restore(sd_arena *a, sd_arena_mark m) {
    while (a->head && a->head != m.block) {
        sd_arena_block *prev = a->head->prev;
        sd_free(a->head->data);
        sd_free(a->head);
        a->head = prev;
    }
    if (a->head) a->head->offset = m.offset;
    a->used_total = m.used_total;
}

void sd_arena_reset(sd_arena *a) {
    if (!a->head) return;
    while (a->head->prev) {
        sd_arena_block *prev = a->head->prev;
        sd_free(a->head->data);
        sd_free(a->head);
        a->head = prev;
    }
    a->head->offset = 0;
    a->used_total = 0;
}
