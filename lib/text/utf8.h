/* utf8.h -- UTF-8 helpers of the text layer: strict decoding and encoding
 * of one character, the streaming prefix rule, and Unicode normalisation
 * (through utf8proc).
 */
#ifndef SD_TEXT_UTF8_H
#define SD_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Encode code point cp (<= 0x10FFFF) into out[0..4); returns its length. */
size_t sd_utf8_put(uint32_t cp, char *out);

/* Decode one character strictly (no overlongs, no surrogates, nothing
 * above U+10FFFF); returns its length, or 0 if s[0..n) does not start with
 * a valid character. */
size_t sd_utf8_get(const uint8_t *s, size_t n, uint32_t *cp);

/* Length of the longest prefix of buf[0..n) that does not end inside a
 * UTF-8 sequence that is still valid so far but incomplete. A streaming
 * caller emits that prefix and keeps the rest (at most 3 bytes) in front of
 * the next chunk. Invalid bytes are never held back. */
size_t sd_utf8_complete_prefix(const char *buf, size_t n);

/* Unicode normalisation forms (the normalizers Hugging Face tokenizers
 * declare). Values are stable: they are what sd_tokenizer_spec carries. */
enum {
    SD_NORM_NONE = 0,
    SD_NORM_NFC = 1,
    SD_NORM_NFD = 2,
    SD_NORM_NFKC = 3,
    SD_NORM_NFKD = 4,
};

/* "NFC", "NFD", "NFKC", "NFKD" ("" for NONE, NULL for other values). */
const char *sd_norm_name(int32_t form);
/* The form named by name[0..len) (as above, case-sensitive), or -1. */
int32_t sd_norm_parse(const char *name, size_t len);

/* Scratch space of sd_utf8_normalize, reused across calls; zero it before
 * the first use and release it with sd_norm_buf_free. */
typedef struct sd_norm_buf {
    int32_t *cps;  /* code points, then the UTF-8 result in place */
    size_t cap;    /* code points cps can hold */
    char *out;     /* the normalised text */
    size_t out_cap;
} sd_norm_buf;

void sd_norm_buf_free(sd_norm_buf *b);

/* Normalise s[0..n) to form. Each maximal run of valid UTF-8 is normalised
 * on its own and invalid bytes are copied unchanged, so no byte is lost
 * and the result is a pure function of the input. For SD_NORM_NONE, or
 * text whose bytes are all ASCII (which every form leaves unchanged),
 * *out is s itself. Otherwise *out points into b->out. Returns 0, or -1 if
 * memory runs out (*out is then NULL). */
int sd_utf8_normalize(int32_t form, const uint8_t *s, size_t n, sd_norm_buf *b, const uint8_t **out,
                      size_t *out_len);

#endif
