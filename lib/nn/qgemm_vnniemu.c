/* qgemm_vnniemu.c -- qgemm_x86.h compiled for the VNNI kernels with dpbusd emulated exactly in AVX2, so tests exercise the VNNI variant on any AVX2 machine. */
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

#define QG_SUFFIX vnniemu
#define QG_DPBUSD 2
#include "qgemm_x86.h"

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int sd_qgemm_vnniemu_unused; /* not an x86-64 build: the scalar path only */
#endif
