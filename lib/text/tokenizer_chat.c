/* tokenizer_chat.c -- the chat template: Dream-Instruct's (Qwen2.5's)
 * ChatML, rendered from (role, content) pairs. See sd_tokenizer_chat in
 * tokenizer.h and docs/TOKENIZER.md.
 */
#include <string.h>

#include "tokenizer_impl.h"

/* ------------------------------------------------------- chat template */

typedef struct sbuf {
    char *out;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->len < b->cap) memcpy(b->out + b->len, s, b->len + l <= b->cap ? l : b->cap - b->len);
    b->len += l;
}

/* The non-tool branch of Dream-Instruct's (Qwen2.5's) template:
 *   [system block: messages[0] if it is a system message, else the default]
 *   for each message:
 *     user, assistant, or system other than the first:
 *         <|im_start|>ROLE\nCONTENT<|im_end|>\n
 *     tool: consecutive tool messages share one user block, each as
 *         \n<tool_response>\nCONTENT\n</tool_response>
 *     anything else: nothing (the template emits nothing for it)
 *   add_generation_prompt: <|im_start|>assistant\n */
int32_t sd_tokenizer_chat(const sd_tokenizer *t, int32_t n, const char *const *roles,
                          const char *const *contents, int32_t add_gen, char *out, size_t cap,
                          size_t *needed, sd_error *err) {
    if (!t || n < 0 || (n > 0 && (!roles || !contents)) || !needed || (!out && cap))
        return sd_fail(err, SMDIFF_E_INVAL, "chat template: invalid argument");
    for (int32_t i = 0; i < n; i++)
        if (!roles[i] || !contents[i])
            return sd_fail(err, SMDIFF_E_INVAL, "chat template: message %d has a NULL role or content", (int)i);
    if (t->im_start < 0 || t->im_end < 0)
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "this tokenizer has no ChatML tokens "
                       "(<|im_start|>, <|im_end|>); no chat template is known for it");
    sbuf b = {out, cap, 0};
    if (n > 0 && !strcmp(roles[0], "system")) {
        sb_put(&b, "<|im_start|>system\n");
        sb_put(&b, contents[0]);
        sb_put(&b, "<|im_end|>\n");
    } else {
        sb_put(&b, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    }
    for (int32_t i = 0; i < n; i++) {
        const char *r = roles[i];
        if (!strcmp(r, "user") || (!strcmp(r, "system") && i > 0) || !strcmp(r, "assistant")) {
            sb_put(&b, "<|im_start|>");
            sb_put(&b, r);
            sb_put(&b, "\n");
            sb_put(&b, contents[i]);
            sb_put(&b, "<|im_end|>\n");
        } else if (!strcmp(r, "tool")) {
            if (i == 0 || strcmp(roles[i - 1], "tool")) sb_put(&b, "<|im_start|>user");
            sb_put(&b, "\n<tool_response>\n");
            sb_put(&b, contents[i]);
            sb_put(&b, "\n</tool_response>");
            if (i == n - 1 || strcmp(roles[i + 1], "tool")) sb_put(&b, "<|im_end|>\n");
        }
    }
    if (add_gen) sb_put(&b, "<|im_start|>assistant\n");
    *needed = b.len + 1;
    if (b.len + 1 > cap)
        return sd_fail(err, SMDIFF_E_BUFFER, "chat template: %zu bytes needed, capacity is %zu",
                       b.len + 1, cap);
    out[b.len] = '\0';
    return SMDIFF_OK;
}
