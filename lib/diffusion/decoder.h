/* decoder.h -- the registry of decoder strategies (smdiff_decoder.h).
 *
 * Built-in strategies and user strategies live in one table behind a
 * mutex. A sampler looks its strategy up by name at the start of each run
 * and holds a copy of the vtable for the run.
 */
#ifndef SD_DIFFUSION_DECODER_H
#define SD_DIFFUSION_DECODER_H

#include "smdiff/smdiff_decoder.h"

/* Copy out the strategy registered under name. SMDIFF_E_NOT_FOUND if none. */
int32_t sd_decoder_lookup(const char *name, smdiff_decoder *vt, void **user_data);

/* NULL-terminated list of built-in strategies, registered on first use of
 * the registry (decoder_builtin.c). */
extern const smdiff_decoder *const sd_builtin_decoders[];

/* How the denoising loop fills the step view for a strategy (DECODING.md):
 *   DREAM: Dream's diffusion_generate. confidence = q[token] of Dream's
 *          sample_tokens, top1/top2/entropy of q, n_transfer =
 *          int(n_masked * (1 - s/t)) in float32 (all at the last step).
 *          Also used for user strategies.
 *   LLADA: LLaDA's generate. confidence = softmax(logits)[token] at
 *          temperature 1, n_transfer from get_num_transfer_tokens.
 *   THRESHOLD: Fast-dLLM. As LLADA, n_transfer = n_masked; a block runs
 *          until it has no mask left (at most block_length steps). */
enum { SD_FAMILY_DREAM = 0, SD_FAMILY_LLADA = 1, SD_FAMILY_THRESHOLD = 2 };
int sd_decoder_family(const char *name);

/* 1 if name is one of smdiff's built-in strategies. */
int sd_decoder_is_builtin(const char *name);

/* torch.linspace(1, eps, n_steps + 1) in float32, element by element as
 * PyTorch computes it (start + i*step in the first half, end - (n-1-i)*step
 * in the second). ts has n_steps + 1 entries. */
void sd_dream_timesteps(int32_t n_steps, double eps, float *ts);

/* Dream's commit count: int(n_masked * (1 - s/t)) in float32, or n_masked at
 * the last step. */
int32_t sd_dream_n_transfer(int32_t n_masked, int32_t step, int32_t n_steps, const float *ts);

/* LLaDA's get_num_transfer_tokens: n_masked split evenly over n_steps,
 * the remainder one each to the first steps. out has n_steps entries. */
void sd_llada_schedule(int32_t n_masked, int32_t n_steps, int32_t *out);

#endif
