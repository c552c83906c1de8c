/* qgemm_avx2.c -- qgemm_x86.h compiled for AVX2 + FMA + F16C: u8 x s8 products by maddubs + madd. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define QG_SUFFIX avx2
#define QG_DPBUSD 0
#include "qgemm_x86.h"

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int sd_qgemm_avx2_unused; /* not an x86-64 build: the scalar path only */
#endif
