/* decoder_builtin.c -- the strategies smdiff ships. They register through
 * the same public interface users have. The reference algorithms (Dream,
 * LLaDA, Fast-dLLM) arrive with the denoising loop. */
#include "decoder.h"

const smdiff_decoder *const sd_builtin_decoders[] = {NULL};
