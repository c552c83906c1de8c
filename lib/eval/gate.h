/* gate.h -- what soft-masking would feed back on held-out text: windows
 * masked at a rate t, and over the masked positions the predictive entropy,
 * whether the true token is the model's top-1 or among its top-k (the
 * tokens SM blends in), and the lambda the schedule gives each position
 * (smdiff_eval_gate in smdiff.h; `smdiff eval gate`).
 *
 * Masks: for rate i of the list, one splitmix64 stream seeded with
 * seed * 0x9E3779B97F4A7C15 + i walks the windows in order; position p is
 * masked when the top 53 bits of its draw, as a fraction, are below t.
 * (The figures of docs/RESULTS.md were drawn this way.) */
#ifndef SD_EVAL_GATE_H
#define SD_EVAL_GATE_H

#include <stdint.h>

#include "core/error.h"
#include "smdiff/smdiff.h"

/* windows [n_windows, seq_len] of ids; rates[n_rates] in (0, 1]; out[n_rates].
 * sm gives k and lambda (lambda at step 1 of 2: past the first step, inside
 * the default window). Arguments are validated by the caller. */
int32_t sd_eval_gate(const smdiff_model *model, const smdiff_softmask *sm, const int32_t *windows,
                     size_t n_windows, size_t seq_len, const double *rates, size_t n_rates, uint64_t seed,
                     smdiff_gate_stats *out, sd_error *err);

#endif
