/* fuzz_safetensors.c -- libFuzzer target for the safetensors header parser
 * and bounds checks: either SMDIFF_E_FORMAT or a handle whose tensors all
 * lie inside the (exact-size) input. */
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_st *st = NULL;
    sd_error err;
    int32_t rc = sd_st_open_memory(data, size, &st, &err);
    if (rc != SMDIFF_OK) {
        if (rc != SMDIFF_E_FORMAT && rc != SMDIFF_E_NOMEM) abort();
        return 0;
    }
    float buf[4096];
    for (int64_t i = 0; i < sd_st_n_tensors(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        if (t->n_bytes) (void)((volatile const uint8_t *)t->data)[t->n_bytes - 1];
        if (sd_st_find(st, t->name) != t) abort();
        if (t->n_elements <= 4096) sd_st_to_f32(t, buf, &err);
    }
    sd_st_close(st);
    return 0;
}
