/* fuzz_gguf.c -- libFuzzer target: any byte string given to the GGUF reader
 * must either be refused with SMDIFF_E_FORMAT or yield a handle whose every
 * accessor stays inside the buffer (ASan checks this: the input is an
 * exact-size heap copy). Block-quantised tensors also go through the scale
 * check, the few-row integer kernel and the quantiser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "nn/qgemm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sd_gguf *g = NULL;
    sd_error err;
    int32_t rc = sd_gguf_open_memory(data, size, &g, &err);
    if (rc != SMDIFF_OK) {
        if (rc != SMDIFF_E_FORMAT && rc != SMDIFF_E_NOMEM) abort();
        return 0;
    }
    char text[256];
    for (int64_t i = 0; i < sd_gguf_n_kv(g); i++) {
        sd_gguf_str k = sd_gguf_key(g, i);
        char key[300];
        size_t n = k.len < sizeof key - 1 ? (size_t)k.len : sizeof key - 1;
        memcpy(key, k.ptr, n);
        key[n] = '\0';
        size_t need;
        sd_gguf_value_text(g, i, text, sizeof text, &need);
        uint64_t u; int64_t s; double f; int b; sd_gguf_str str;
        sd_gguf_get_u64(g, key, &u, &err);
        sd_gguf_get_i64(g, key, &s, &err);
        sd_gguf_get_f64(g, key, &f, &err);
        sd_gguf_get_bool(g, key, &b, &err);
        if (sd_gguf_get_str(g, key, &str, &err) == SMDIFF_OK && str.len) (void)((volatile const char *)str.ptr)[str.len - 1];
        uint32_t et; uint64_t cnt;
        if (sd_gguf_get_arr(g, key, &et, &cnt, &err) == SMDIFF_OK && cnt) {
            uint64_t idx[2] = {0, cnt - 1};
            for (int j = 0; j < 2; j++) {
                if (sd_gguf_arr_str(g, key, idx[j], &str) == SMDIFF_OK && str.len)
                    (void)((volatile const char *)str.ptr)[str.len - 1];
                sd_gguf_arr_i64(g, key, idx[j], &s);
                sd_gguf_arr_f64(g, key, idx[j], &f);
            }
        }
    }
    static float buf[4096], out[4];
    static unsigned char qbuf[4096 * 4], scratch[4096 * 2];
    for (int64_t i = 0; i < sd_gguf_n_tensors(g); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        if (t->n_bytes) (void)((volatile const uint8_t *)t->data)[t->n_bytes - 1];
        if (!sd_ggml_is_supported(t->type)) continue;
        /* Convert the first row (up to 4096 elements, whole blocks). */
        uint64_t row = t->ne[0] < 4096 ? t->ne[0] : 4096;
        row -= row % sd_ggml_block_size(t->type);
        sd_ggml_to_f32(t->type, t->data, buf, (int64_t)row);
        if (!sd_quant_is_block(t->type) || row == 0) continue;
        /* The loader's scale check over every block, the few-row kernel on
         * the first row (one activation row of ones, or of the decoded
         * values), and the quantiser on whatever values came out (NaN,
         * inf, subnormals: no undefined float-to-int conversion). */
        sd_quant_find_bad_block(t->type, t->data, (int64_t)(t->n_bytes / sd_ggml_block_bytes(t->type)) *
                                                      (int64_t)sd_ggml_block_size(t->type));
        if (sd_qgemm_supported(t->type) && sd_qgemm_scratch_bytes(t->type, 1, (int64_t)row) <= sizeof scratch) {
            sd_qgemm_few(out, 1, 0.0f, buf, 1, t->type, t->data, 1, (int64_t)row, scratch, NULL);
            for (uint64_t k = 0; k < row; k++) buf[k] = 1.0f;
            sd_qgemm_few(out, 1, 0.0f, buf, 1, t->type, t->data, 1, (int64_t)row, scratch, NULL);
            sd_ggml_to_f32(t->type, t->data, buf, (int64_t)row);
        }
        sd_ggml_from_f32(t->type, buf, qbuf, (int64_t)row);
    }
    sd_gguf_close(g);
    return 0;
}
