/* arena.h -- bump allocator for per-step scratch memory.
 *
 * One arena is sized once (e.g. from the canvas length L) and reused every
 * step: sd_arena_reset rewinds it without freeing. Allocations are 64-byte
 * aligned. An arena may also grow by chaining blocks when created growable;
 * hot paths use fixed arenas so nothing is allocated per layer.
 */
#ifndef SD_CORE_ARENA_H
#define SD_CORE_ARENA_H

#include <stddef.h>

typedef struct sd_arena_block sd_arena_block;

typedef struct sd_arena {
    sd_arena_block *head;   /* current block (newest) */
    size_t block_size;      /* default capacity of new blocks */
    int growable;           /* 0: fail when full; 1: chain a new block */
    size_t high_water;      /* most bytes ever in use at once */
    size_t used_total;      /* bytes in use now, all blocks */
} sd_arena;

/* Initialise with one block of `capacity` bytes. Returns 0 or -1 (no memory). */
int sd_arena_init(sd_arena *a, size_t capacity, int growable);
void sd_arena_destroy(sd_arena *a);      /* frees every block; accepts zeroed arena */
void *sd_arena_alloc(sd_arena *a, size_t size);  /* 64-aligned, NULL when full */
float *sd_arena_floats(sd_arena *a, size_t n);   /* n floats, NULL on overflow/full */

/* Position markers for nested scratch use. */
typedef struct sd_arena_mark {
    sd_arena_block *block;
    size_t offset;
    size_t used_total;
} sd_arena_mark;

sd_arena_mark sd_arena_save(const sd_arena *a);
void sd_arena_restore(sd_arena *a, sd_arena_mark m);  /* frees blocks chained after m */
void sd_arena_reset(sd_arena *a);                     /* back to empty, keeps first block */

#endif
