/* cpu.h -- run-time CPU feature detection, the one place every kernel asks
 * which instructions it may use.
 *
 * The build has no -march: kernels are compiled for the baseline ISA and,
 * where it pays, once more with __attribute__((target(...))), and pick one
 * at run time with sd_cpu_has(). A feature counts only when the CPU has it
 * (CPUID) AND the operating system saves the registers it needs (XGETBV:
 * YMM state for AVX*, opmask and ZMM state for AVX-512), so a kernel never
 * faults on a machine or VM that hides them. On other architectures every
 * query answers 0.
 *
 * Detection runs once (thread-safe, lock-free: racing first callers store
 * the same answer). The SMDIFF_CPU_MASK environment variable, read at that
 * time, may clear features (a hexadecimal mask of SD_CPU_* bits to keep),
 * so a run can take the code paths of an older CPU.
 */
#ifndef SD_CORE_CPU_H
#define SD_CORE_CPU_H

#include <stddef.h>
#include <stdint.h>

/* One bit per feature. */
enum {
    SD_CPU_AVX2 = 1u << 0,
    SD_CPU_FMA = 1u << 1,
    SD_CPU_F16C = 1u << 2,
    SD_CPU_AVX512F = 1u << 3,
    SD_CPU_AVX512BW = 1u << 4,
    SD_CPU_AVX512VL = 1u << 5,
    SD_CPU_AVX512DQ = 1u << 6,
    SD_CPU_AVX512_BF16 = 1u << 7,
    SD_CPU_AVX512_VNNI = 1u << 8,
    SD_CPU_AVX_VNNI = 1u << 9,
    SD_CPU_N_FEATURES = 10
};

/* The sets the kernels dispatch on. */
#define SD_CPU_SET_AVX2 (SD_CPU_AVX2 | SD_CPU_FMA | SD_CPU_F16C)
#define SD_CPU_SET_AVX512 \
    (SD_CPU_SET_AVX2 | SD_CPU_AVX512F | SD_CPU_AVX512BW | SD_CPU_AVX512VL | SD_CPU_AVX512DQ)

/* The SD_CPU_* bits of this machine (after SMDIFF_CPU_MASK). */
uint32_t sd_cpu_features(void);

/* 1 if every feature in `mask` is available. */
static inline int sd_cpu_has(uint32_t mask) { return (sd_cpu_features() & mask) == mask; }

/* The name of one feature bit as Linux's /proc/cpuinfo spells it
 * ("avx2", "avx512_bf16", ...); NULL for anything but a single known bit. */
const char *sd_cpu_feature_name(uint32_t bit);

/* The available features as space-separated names (for logs and
 * benchmark reports); NUL-terminated, truncated to size. Returns the
 * length the full text needs. */
size_t sd_cpu_describe(char *buf, size_t size);

#endif
