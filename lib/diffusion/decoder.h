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

#endif
