/* qgemm_vnni.c -- qgemm_x86.h compiled for AVX-512 VNNI (with VL, BW): u8 x s8 products by dpbusd on 256-bit vectors; chosen at run time only when the CPU and OS support it. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")
#endif

#define QG_SUFFIX vnni
#define QG_DPBUSD 1
#include "qgemm_x86.h"

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int sd_qgemm_vnni_unused; /* not an x86-64 build: the scalar path only */
#endif
