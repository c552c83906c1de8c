#include "sampler.h"

static const sd_option_def defs[] = {
    {SMDIFF_SAMPLER_STEPS, "steps", SMDIFF_TYPE_INT, 1, 1048576, 64, 0, 0},
    {SMDIFF_SAMPLER_GEN_LENGTH, "gen_length", SMDIFF_TYPE_INT, 1, 1048576, 128, 0, 0},
    {SMDIFF_SAMPLER_BLOCK_LENGTH, "block_length", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SAMPLER_TEMPERATURE, "temperature", SMDIFF_TYPE_DOUBLE, 0, 100, 0, 0, 0},
    {SMDIFF_SAMPLER_TOP_K, "top_k", SMDIFF_TYPE_INT, 0, 1048576, 0, 0, 0},
    {SMDIFF_SAMPLER_TOP_P, "top_p", SMDIFF_TYPE_DOUBLE, 0, 1, 1, 1, 0},
    {SMDIFF_SAMPLER_SEED, "seed", SMDIFF_TYPE_INT, 0, 9223372036854775807.0, 0, 0, 0},
    {SMDIFF_SAMPLER_ALG_TEMP, "alg_temp", SMDIFF_TYPE_DOUBLE, 0, 100, 0, 0, 0},
    {SMDIFF_SAMPLER_THRESHOLD, "threshold", SMDIFF_TYPE_DOUBLE, 0, 1, 0.9, 0, 0},
    {SMDIFF_SAMPLER_EPS, "eps", SMDIFF_TYPE_DOUBLE, 0, 0.5, 1e-3, 0, 0},
    {SMDIFF_SAMPLER_THREADS, "threads", SMDIFF_TYPE_INT, 0, 1024, 0, 0, 0},
    {SMDIFF_SAMPLER_STOP_AT_EOS, "stop_at_eos", SMDIFF_TYPE_INT, 0, 1, 1, 0, 0},
};

const sd_option_table sd_sampler_options = {defs,
                                            (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_SAMPLER_OPT_LAST_ - SMDIFF_SAMPLER_OPT_FIRST_ + 1, "one entry per option");
