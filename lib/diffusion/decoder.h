/* decoder.h -- the registry of decoder strategies (smdiff_decoder.h) and
 * the commit schedules a strategy can declare.
 *
 * Built-in strategies and user strategies live in one table behind a
 * mutex. A sampler looks its strategy up by name at the start of each run
 * and holds a copy of the vtable for the run; the copy's declaration is
 * complete (version-1 defaults filled in, needs never 0), and it is all the
 * denoising loop knows about the strategy.
 */
#ifndef SD_DIFFUSION_DECODER_H
#define SD_DIFFUSION_DECODER_H

#include "smdiff/smdiff_decoder.h"

/* Copy out the strategy registered under name. SMDIFF_E_NOT_FOUND if none. */
int32_t sd_decoder_lookup(const char *name, smdiff_decoder *vt, void **user_data);

/* NULL-terminated list of built-in strategies, registered on first use of
 * the registry (decoder_builtin.c). */
extern const smdiff_decoder *const sd_builtin_decoders[];

/* ReMDM's strategies (decoder_remdm.c), in that list. */
extern const smdiff_decoder sd_decoder_remdm_cap, sd_decoder_remdm_loop;

/* ------------------------------------------------------------ schedules */

/* Steps a block of block_length positions runs under a schedule:
 * steps_per_block for TIMESTEP and EVEN, block_length for UNTIL_DONE. */
size_t sd_schedule_steps(int32_t schedule, size_t steps_per_block, size_t block_length);

/* view->n_transfer at step `step` of n_steps, with n_masked positions of the
 * block still masked (block_length at the block's start); ts as
 * sd_dream_timesteps fills it. */
size_t sd_schedule_n_transfer(int32_t schedule, size_t n_masked, size_t block_length, size_t step,
                              size_t n_steps, const float *ts);

/* torch.linspace(1, eps, n_steps + 1) in float32, element by element as
 * PyTorch computes it (start + i*step in the first half, end - (n-1-i)*step
 * in the second). ts has n_steps + 1 entries. */
void sd_dream_timesteps(size_t n_steps, double eps, float *ts);

/* Dream's commit count: int(n_masked * (1 - s/t)) in float32, or n_masked at
 * the last step. */
size_t sd_dream_n_transfer(size_t n_masked, size_t step, size_t n_steps, const float *ts);

/* LLaDA's get_num_transfer_tokens at one step: n_masked split evenly over
 * n_steps, the remainder one each to the first steps. */
size_t sd_llada_n_transfer(size_t n_masked, size_t step, size_t n_steps);

/* The same for every step: out has n_steps entries. */
void sd_llada_schedule(size_t n_masked, size_t n_steps, size_t *out);

#endif
