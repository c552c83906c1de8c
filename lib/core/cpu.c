/* cpu.c -- CPUID / XGETBV feature detection. See cpu.h.
 *
 * Hand-written because no Debian library does this small job better:
 * __builtin_cpu_supports lacks some of these names on the compilers we
 * support (clang 14 has no "f16c", "avx512bf16" or "avxvnni"), and the
 * CPUID bits are fixed by the Intel SDM (vol. 2A, CPUID):
 *   leaf 1 ECX:            FMA 12, OSXSAVE 27, AVX 28, F16C 29
 *   leaf 7/0 EBX:          AVX2 5, AVX512F 16, AVX512DQ 17, AVX512BW 30, AVX512VL 31
 *   leaf 7/0 ECX:          AVX512_VNNI 11
 *   leaf 7/1 EAX:          AVX_VNNI 4, AVX512_BF16 5
 *   XCR0 (XGETBV 0):       SSE 1, AVX 2 (YMM) -- both for AVX*;
 *                          opmask 5, ZMM_Hi256 6, Hi16_ZMM 7 -- all for AVX-512
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define SD_CPU_X86 1
#else
#define SD_CPU_X86 0
#endif

static const char *const k_names[SD_CPU_N_FEATURES] = {
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512_bf16", "avx512_vnni", "avx_vnni",
};

#if SD_CPU_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* the OS does not save YMM state */
    int zmm_os = (xcr0 & 0xE0) == 0xE0;
    uint32_t f = 0;
    if ((c >> 12) & 1) f |= SD_CPU_FMA;
    if ((c >> 29) & 1) f |= SD_CPU_F16C;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a;
    if ((b >> 5) & 1) f |= SD_CPU_AVX2;
    if (((c >> 11) & 1) && zmm_os) f |= SD_CPU_AVX512_VNNI;
    if (zmm_os) {
        if ((b >> 16) & 1) f |= SD_CPU_AVX512F;
        if ((b >> 17) & 1) f |= SD_CPU_AVX512DQ;
        if ((b >> 30) & 1) f |= SD_CPU_AVX512BW;
        if ((b >> 31) & 1) f |= SD_CPU_AVX512VL;
    }
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if ((a >> 4) & 1) f |= SD_CPU_AVX_VNNI;
        if (((a >> 5) & 1) && zmm_os) f |= SD_CPU_AVX512_BF16;
    }
    /* The AVX-512 extensions are usable only on top of AVX-512F. */
    if (!(f & SD_CPU_AVX512F))
        f &= ~(uint32_t)(SD_CPU_AVX512BW | SD_CPU_AVX512VL | SD_CPU_AVX512DQ | SD_CPU_AVX512_BF16 |
                         SD_CPU_AVX512_VNNI);
    return f;
}
#else
static uint32_t detect(void) { return 0; }
#endif

#define DETECTED (1u << 31)

uint32_t sd_cpu_features(void) {
    static _Atomic uint32_t cached = 0;
    uint32_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!(v & DETECTED)) {
        v = detect();
        const char *mask = getenv("SMDIFF_CPU_MASK");
        if (mask && *mask) v &= (uint32_t)strtoul(mask, NULL, 16);
        v |= DETECTED;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v & ~DETECTED;
}

const char *sd_cpu_feature_name(uint32_t bit) {
    for (int i = 0; i < SD_CPU_N_FEATURES; i++)
        if (bit == (1u << i)) return k_names[i];
    return NULL;
}

size_t sd_cpu_describe(char *buf, size_t size) {
    uint32_t f = sd_cpu_features();
    size_t len = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < SD_CPU_N_FEATURES; i++) {
        if (!(f & (1u << i))) continue;
        int n = snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, "%s%s",
                         len ? " " : "", k_names[i]);
        if (n > 0) len += (size_t)n;
    }
    return len + 1;
}
