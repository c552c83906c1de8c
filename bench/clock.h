/* clock.h -- the benchmarks' two clocks. Header-only: each benchmark is its
 * own program. */
#ifndef SMDIFF_BENCH_CLOCK_H
#define SMDIFF_BENCH_CLOCK_H

#include <time.h>

/* Wall-clock seconds (monotonic). */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (every thread, user + system): on a
 * shared machine this is the work done, while wall time also counts
 * waiting for a core. With more than one thread it includes OpenBLAS's
 * spin-waiting. */
static inline double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
