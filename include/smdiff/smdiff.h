/*
 * smdiff.h -- public API of smdiff, an embeddable C library that runs and
 * fine-tunes masked diffusion language models with soft-masking.
 *
 * Conventions (docs/API.md has the long form):
 *
 *  - Every fallible function returns an int32_t status: SMDIFF_OK (0) or a
 *    negative SMDIFF_E_* code. Results are written through out-parameters,
 *    which always come last. On failure out-parameters are left untouched
 *    unless the function says otherwise.
 *  - Error messages, one rule: every call that fails records its detailed
 *    message in the calling thread's slot, read with smdiff_last_error().
 *    A call on an object that one thread owns at a time -- a sampler, a
 *    soft-mask schedule, a trainer, a server, a batch -- also records it on
 *    that object (smdiff_sampler_last_error, smdiff_softmask_last_error,
 *    smdiff_trainer_last_error, smdiff_server_last_error,
 *    smdiff_batch_last_error). A model is shared between threads once
 *    loaded, so it keeps no message: read a model call's failure with
 *    smdiff_last_error(). A failing call always overwrites both places, so
 *    neither holds a stale message from an earlier call; a successful call
 *    clears neither (like errno: read them only after a failure).
 *  - Objects are opaque handles. Each has a create/load function and a free
 *    function that accepts NULL.
 *  - Options are set through typed, key-addressed setters (zstd style).
 *    Each option has a name, a type, bounds and a default that can be
 *    queried. An out-of-bounds value returns SMDIFF_E_RANGE and leaves the
 *    object unchanged. Keys come in families with disjoint ranges, each
 *    family owning [base, base + 100): SMDIFF_MODEL_* 100, SMDIFF_SM_* 200,
 *    SMDIFF_SAMPLER_* 300, SMDIFF_TRAIN_* 400, SMDIFF_PROP_* 500,
 *    SMDIFF_SERVER_* 600, SMDIFF_QUANT_* 700, SMDIFF_BATCH_* 800
 *    (experimental); keys 0..99 are no family's.
 *    Every setter, getter, info and property call refuses a key of another
 *    family with SMDIFF_E_INVAL, the message naming both families. Each
 *    family has *_OPT_FIRST_ and *_OPT_LAST_.
 *  - Types: size_t for every count and capacity (n_ids, n_rows, capacity,
 *    *n_out, ...), int32_t for token ids, index arrays, status codes and
 *    0/1 flags, int64_t and double for option values. The same quantity
 *    has the same name in every function; two-call outputs are (buffer,
 *    capacity, *n_out) -- or *needed, counting the NUL, for NUL-terminated
 *    text.
 *  - The library never exits, aborts or prints; it reports through return
 *    codes and the log callback.
 *  - Experimental declarations are visible only when the includer defines
 *    SMDIFF_EXPERIMENTAL before including this header; see the
 *    EXPERIMENTAL SECTION.
 *
 * Thread-safety: a model is immutable after loading and may be shared by
 * any number of threads. A sampler, a soft-mask schedule, a trainer or a
 * server (smdiff_server_stop excepted) belongs to one thread at a time. Global settings (allocator, log
 * callback) are documented at each setter.
 *
 * Threads and lifetimes: every call that is given a model holds a
 * reference to it until it returns, so smdiff_model_free may drop the last
 * reference while other threads are still inside calls on the model (a
 * generation, an evaluation, a tokenization): the model is destroyed when
 * the last of those calls returns. The reference a thread passes in must
 * be valid when its call begins: give each thread its own
 * (smdiff_model_retain before starting it, smdiff_model_free when it is
 * done) when the order is not otherwise known. tests/test_threads.c checks
 * this under ThreadSanitizer (make check-tsan).
 *
 * This header includes only <stddef.h> and <stdint.h> and compiles as C99,
 * C11 and C++.
 */
#ifndef SMDIFF_H
#define SMDIFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One export macro. Define SMDIFF_STATIC when linking the static library
 * on platforms where it matters; on ELF it only sets symbol visibility. */
#if defined(_WIN32) && !defined(SMDIFF_STATIC)
#  ifdef SMDIFF_BUILDING
#    define SMDIFF_API __declspec(dllexport)
#  else
#    define SMDIFF_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define SMDIFF_API __attribute__((visibility("default")))
#else
#  define SMDIFF_API
#endif

/* ======================================================================
 * STABLE SECTION
 * Everything from here to the EXPERIMENTAL SECTION keeps its ABI across
 * minor versions. New functions and new enum values may be added; numbers
 * already published never change meaning. The functions of 0.1 are in the
 * library's symbol-version node SMDIFF_0, stable functions added since in
 * SMDIFF_0.2 (and later nodes, each inheriting the one before).
 * ====================================================================== */

/* ---------------------------------------------------------------- version */

#define SMDIFF_VERSION_MAJOR 0
#define SMDIFF_VERSION_MINOR 2
#define SMDIFF_VERSION_PATCH 0
#define SMDIFF_VERSION_NUMBER \
    (SMDIFF_VERSION_MAJOR * 10000 + SMDIFF_VERSION_MINOR * 100 + SMDIFF_VERSION_PATCH)
#define SMDIFF_VERSION_STRING "0.2.0"

/* Version of the library actually linked, as MAJOR*10000+MINOR*100+PATCH.
 * Compare with SMDIFF_VERSION_NUMBER to detect a header/library mismatch.
 * Thread-safe. */
SMDIFF_API uint32_t smdiff_version_number(void);

/* Version of the linked library as "MAJOR.MINOR.PATCH" (static storage).
 * Thread-safe. */
SMDIFF_API const char *smdiff_version_string(void);

/* ----------------------------------------------------------- status codes */

/* Pinned forever: a number, once published, keeps its meaning. */
#define SMDIFF_OK                 0
#define SMDIFF_E_INVAL          (-1)  /* invalid argument (NULL, bad key, wrong type) */
#define SMDIFF_E_NOMEM          (-2)  /* memory allocation failed */
#define SMDIFF_E_RANGE          (-3)  /* value outside the option's bounds */
#define SMDIFF_E_UNSUPPORTED    (-4)  /* not implemented in this build or version */
#define SMDIFF_E_IO             (-5)  /* file could not be opened, read or written */
#define SMDIFF_E_FORMAT         (-6)  /* malformed or unsupported file contents */
#define SMDIFF_E_STATE          (-7)  /* call not valid in the object's current state */
#define SMDIFF_E_NOT_FOUND      (-8)  /* named item (key, strategy, tensor) not found */
#define SMDIFF_E_BUFFER         (-9)  /* output buffer too small; needed size reported */
#define SMDIFF_E_ABORTED       (-10)  /* stopped by the host's abort callback */
#define SMDIFF_E_NUMERIC       (-11)  /* NaN or infinity in a computation */
#define SMDIFF_E_THREAD        (-12)  /* a thread or synchronisation primitive failed */
#define SMDIFF_E_INTERNAL      (-13)  /* a bug in smdiff; please report it */
#define SMDIFF_E_LAST_         (-13)  /* lowest code in this version (for iteration) */

/* Human-readable one-line message for a status code, e.g. "invalid
 * argument". Unknown codes give "unknown error". Static storage; never NULL.
 * Thread-safe. */
SMDIFF_API const char *smdiff_strerror(int32_t status);

/* Symbolic name for a status code, e.g. "SMDIFF_E_INVAL"; "SMDIFF_OK" for 0;
 * "SMDIFF_E_UNKNOWN" for unknown codes. Static storage; never NULL.
 * Thread-safe. */
SMDIFF_API const char *smdiff_err_name(int32_t status);

/* Detailed message of the most recent failing call in this thread, any call
 * (see the error rule at the top). Empty string if none has failed yet.
 * Valid until the next smdiff call in this thread. Thread-safe
 * (thread-local). */
SMDIFF_API const char *smdiff_last_error(void);

/* ---------------------------------------------------------------- logging */

#define SMDIFF_LOG_ERROR 0
#define SMDIFF_LOG_WARN  1
#define SMDIFF_LOG_INFO  2
#define SMDIFF_LOG_DEBUG 3

/* Log callback: level is SMDIFF_LOG_*, message is one line without a
 * trailing newline, valid only during the call. May be called from any
 * thread that runs smdiff code, so it must be thread-safe. */
typedef void (*smdiff_log_fn)(int32_t level, const char *message, void *user_data);

/* Replace the log callback. NULL restores the default, which discards every
 * message (the library never prints on its own). Messages above max_level
 * are not formatted at all. Returns SMDIFF_E_RANGE for a level outside
 * SMDIFF_LOG_ERROR..SMDIFF_LOG_DEBUG. Thread-safe, but a message being
 * delivered concurrently may still reach the old callback. */
SMDIFF_API int32_t smdiff_set_log_callback(smdiff_log_fn fn, void *user_data,
                                           int32_t max_level);

/* ------------------------------------------------------------- allocation */

/* Allocator hooks. alloc must return memory aligned for any standard type
 * (like malloc) or NULL on failure; release must accept NULL. smdiff aligns
 * its large buffers itself on top of these. */
typedef void *(*smdiff_alloc_fn)(size_t size, void *user_data);
typedef void (*smdiff_free_fn)(void *ptr, void *user_data);

/* Route every allocation smdiff makes through alloc/release (the default is
 * malloc/free). Pass both NULL to restore the default. Memory-mapped model
 * weights are not allocations and do not go through the hooks.
 * Returns SMDIFF_E_INVAL if exactly one is NULL, SMDIFF_E_STATE if any
 * smdiff object or allocation is alive (the hooks must not change under
 * live memory). Not thread-safe: call before using the library. */
SMDIFF_API int32_t smdiff_set_allocator(smdiff_alloc_fn alloc, smdiff_free_fn release,
                                        void *user_data);

/* -------------------------------------------------------------- options */

/* Option value types, reported by the *_option_info functions. */
#define SMDIFF_TYPE_INT    1   /* set/get with the *_int functions (int64_t) */
#define SMDIFF_TYPE_DOUBLE 2   /* set/get with the *_double functions */

/* ================================================================ model
 *
 * A model holds the weights, the tokenizer and the architecture of one
 * masked diffusion LM. Create it, set load options, then load a file; after
 * loading it is immutable, reference-counted and safe to share between
 * threads.
 */
typedef struct smdiff_model smdiff_model;

/* Model options, family 100 (set before loading). */
#define SMDIFF_MODEL_USE_MMAP   100  /* int 0..1, default 1: map weights instead of reading */
#define SMDIFF_MODEL_THREADS    101  /* int 0..1024, default 0 = all online CPUs: threads for
                                        model-level computation (smdiff_model_logits) */
#define SMDIFF_MODEL_CONTEXT    102  /* int 0..1048576, default 0 = the file's context length */
#define SMDIFF_MODEL_OPT_FIRST_ 100
#define SMDIFF_MODEL_OPT_LAST_  102

/* Create an empty, unloaded model with default options. *out receives the
 * handle (reference count 1). Returns SMDIFF_E_INVAL if out is NULL,
 * SMDIFF_E_NOMEM. Thread-safe. */
SMDIFF_API int32_t smdiff_model_create(smdiff_model **out);

/* Add a reference. Returns SMDIFF_E_INVAL for NULL. Thread-safe. */
SMDIFF_API int32_t smdiff_model_retain(smdiff_model *model);

/* Drop a reference; the model is destroyed when the last one goes, or,
 * if calls on it are still running in other threads, when the last of them
 * returns (each holds its own reference: "Threads and lifetimes" above).
 * Accepts NULL. Thread-safe. */
SMDIFF_API void smdiff_model_free(smdiff_model *model);

/* Set or get an integer model option. Setters return SMDIFF_E_STATE after
 * the model is loaded, SMDIFF_E_INVAL for an unknown key, a key of another
 * family or of another type, SMDIFF_E_RANGE out of bounds (model
 * unchanged). Not thread-safe before loading; getters are thread-safe
 * after. */
SMDIFF_API int32_t smdiff_model_set_int(smdiff_model *model, int32_t key, int64_t value);
SMDIFF_API int32_t smdiff_model_get_int(const smdiff_model *model, int32_t key,
                                        int64_t *out);

/* Describe a model option: its name ("use_mmap"), type (SMDIFF_TYPE_*),
 * bounds and default. Any out pointer may be NULL. Returns SMDIFF_E_INVAL
 * for an unknown key or a key of another family. Thread-safe. */
SMDIFF_API int32_t smdiff_model_option_info(int32_t key, const char **name, int32_t *type,
                                            double *min, double *max, double *def);

/* Look a model option up by name. SMDIFF_E_NOT_FOUND if there is none.
 * Thread-safe. */
SMDIFF_API int32_t smdiff_model_option_key(const char *name, int32_t *key);

/* Load a GGUF model file (architectures "dream" and "llada"). Returns
 * SMDIFF_E_IO if it cannot be opened, SMDIFF_E_FORMAT with a message naming
 * the offending field if it is malformed, SMDIFF_E_STATE if this model is
 * already loaded. Not thread-safe for the same model. */
SMDIFF_API int32_t smdiff_model_load_file(smdiff_model *model, const char *path);

/* Whether the model is loaded: *out = 1 or 0. Thread-safe. */
SMDIFF_API int32_t smdiff_model_is_loaded(const smdiff_model *model, int32_t *out);

/* Integer properties of a loaded model, family 500. */
#define SMDIFF_PROP_VOCAB_SIZE   500  /* rows of the output head */
#define SMDIFF_PROP_MASK_ID      501  /* id of the [MASK] token */
#define SMDIFF_PROP_CONTEXT      502  /* maximum canvas length */
#define SMDIFF_PROP_EMBED_DIM    503  /* d, the width of an input embedding */
#define SMDIFF_PROP_LAYERS       504
#define SMDIFF_PROP_HEADS        505
#define SMDIFF_PROP_KV_HEADS     506
#define SMDIFF_PROP_FFN_DIM      507
#define SMDIFF_PROP_SHIFT_LOGITS 508  /* 1 if row i predicts position i+1 (dream) */
#define SMDIFF_PROP_BOS_ID       509  /* -1 if none */
#define SMDIFF_PROP_EOS_ID       510  /* -1 if none */
#define SMDIFF_PROP_PAD_ID       511  /* -1 if none */
#define SMDIFF_PROP_N_PARAMS     512  /* parameter count, embeddings included */
#define SMDIFF_PROP_OPT_FIRST_   500
#define SMDIFF_PROP_OPT_LAST_    512

/* Read an integer property of a loaded model. SMDIFF_E_INVAL for a key of
 * another family or NULL out, SMDIFF_E_STATE if not loaded. Thread-safe. */
SMDIFF_API int32_t smdiff_model_property(const smdiff_model *model, int32_t prop,
                                         int64_t *out);

/* Architecture name ("dream", "llada") of a loaded model, static or
 * model-owned storage valid while the model lives. Thread-safe. */
SMDIFF_API int32_t smdiff_model_arch(const smdiff_model *model, const char **out);

/* Copy a metadata value of the loaded file, formatted as text (numbers in
 * decimal, arrays as "[n items]"), into buf (NUL-terminated). *needed gets
 * the size including the NUL; if capacity is smaller, returns
 * SMDIFF_E_BUFFER and writes nothing else (buf may be NULL when capacity is
 * 0). SMDIFF_E_NOT_FOUND if the key is absent. Thread-safe. */
SMDIFF_API int32_t smdiff_model_meta(const smdiff_model *model, const char *key,
                                     char *buf, size_t capacity, size_t *needed);

/* Logits for selected rows of a canvas of token ids.
 *   ids[n_ids]:   the canvas (prompt, committed and mask tokens), 1 <= n_ids
 *                 <= the context
 *   rows[n_rows]: canvas rows whose logits are wanted (0 <= row < n_ids)
 *   logits:       n_rows * vocab floats written row after row; capacity is
 *                 its length in floats.
 * Attention is bidirectional. Rows are the model's raw output rows: for a
 * model with SMDIFF_PROP_SHIFT_LOGITS, row i predicts position i+1.
 * SMDIFF_E_RANGE for ids outside the vocabulary, rows outside the canvas,
 * a canvas beyond the context or a capacity below n_rows * vocab.
 * Thread-safe (uses a private workspace per call). */
SMDIFF_API int32_t smdiff_model_logits(const smdiff_model *model, const int32_t *ids,
                                       size_t n_ids, const int32_t *rows, size_t n_rows,
                                       float *logits, size_t capacity);

/* As smdiff_model_logits, but the canvas is given as input embeddings
 * embd[n_pos * SMDIFF_PROP_EMBED_DIM], e.g. soft-masked mixtures. */
SMDIFF_API int32_t smdiff_model_logits_embd(const smdiff_model *model, const float *embd,
                                            size_t n_pos, const int32_t *rows, size_t n_rows,
                                            float *logits, size_t capacity);

/* ------------------------------------------------------------- tokenizer */

#define SMDIFF_TOKENIZE_PARSE_SPECIAL 1  /* match special tokens written in the text */
#define SMDIFF_TOKENIZE_ADD_BOS       2  /* prepend BOS when the tokenizer asks for it
                                            (GGUF tokenizer.ggml.add_bos_token or HF
                                            add_bos_token true) and has a BOS id, as
                                            Hugging Face's add_special_tokens does;
                                            otherwise nothing is prepended */
#define SMDIFF_DETOKENIZE_SPECIAL     1  /* render special tokens instead of skipping */

/* Text (UTF-8, n_bytes long, need not be NUL-terminated) to token ids.
 * Two-call pattern: *n_out always receives the number of ids needed; if
 * capacity is smaller, returns SMDIFF_E_BUFFER (ids may be NULL then).
 * Thread-safe. */
SMDIFF_API int32_t smdiff_model_tokenize(const smdiff_model *model, const char *text,
                                         size_t n_bytes, int32_t flags, int32_t *ids,
                                         size_t capacity, size_t *n_out);

/* Token ids to text (not NUL-terminated). Same two-call pattern: *n_out
 * receives the bytes needed. Ids outside the vocabulary give SMDIFF_E_RANGE.
 * Thread-safe. */
SMDIFF_API int32_t smdiff_model_detokenize(const smdiff_model *model, const int32_t *ids,
                                           size_t n_ids, int32_t flags, char *text,
                                           size_t capacity, size_t *n_out);

/* Load only a tokenizer into an unloaded model, so text can be tokenized
 * without weights. path is a GGUF file (its tokenizer.ggml.* metadata), a
 * Hugging Face tokenizer directory (tokenizer.json; or vocab.json +
 * merges.txt with tokenizer_config.json / added_tokens.json /
 * special_tokens_map.json; or GPT-2's encoder.json + vocab.bpe) or a
 * tokenizer.json file. Afterwards tokenize, detokenize, token pieces and
 * chat templates work; calls that need weights (properties, logits,
 * generation) still return SMDIFF_E_STATE. Returns SMDIFF_E_STATE if the
 * model is loaded or already has a tokenizer, SMDIFF_E_IO if the path cannot
 * be read, SMDIFF_E_FORMAT for malformed files, SMDIFF_E_NOT_FOUND for a
 * directory without tokenizer files, SMDIFF_E_UNSUPPORTED for a tokenizer
 * kind smdiff does not implement (only byte-level BPE is). Not thread-safe
 * for the same model; once it returns, the model may be shared. */
SMDIFF_API int32_t smdiff_model_load_tokenizer(smdiff_model *model, const char *path);

/* Write the model's tokenizer as a vocabulary-only GGUF file (the
 * tokenizer.ggml.* keys and general.architecture, no tensors), atomically.
 * Such a file is what smdiff_model_load_tokenizer and `smdiff train
 * --tokenizer` read; it is how a tokenizer assembled from Hugging Face files
 * (e.g. GPT-2's plus an added <|mask|> token) travels with smdiff. Returns
 * SMDIFF_E_STATE if the model has no tokenizer, SMDIFF_E_IO if the file
 * cannot be written, SMDIFF_E_UNSUPPORTED for a tokenizer whose split rule
 * has no tokenizer.ggml.pre name. Thread-safe. */
SMDIFF_API int32_t smdiff_model_save_tokenizer(const smdiff_model *model, const char *path);

/* The bytes token id stands for (control tokens as their text, e.g.
 * "<|im_end|>"), not NUL-terminated. Two-call pattern as
 * smdiff_model_detokenize: *n_out receives the byte count; if capacity is
 * smaller, returns SMDIFF_E_BUFFER (text may be NULL when capacity is 0).
 * SMDIFF_E_RANGE for an id outside the vocabulary, SMDIFF_E_STATE if the
 * model has no tokenizer. A piece may end inside a multi-byte character:
 * see smdiff_utf8_complete. Thread-safe. */
SMDIFF_API int32_t smdiff_model_token_piece(const smdiff_model *model, int32_t id, char *text,
                                            size_t capacity, size_t *n_out);

/* Render a conversation with the model's chat template into a prompt
 * (NUL-terminated UTF-8; tokenize it with SMDIFF_TOKENIZE_PARSE_SPECIAL).
 * roles[i] / contents[i] (NUL-terminated) form message i; roles are
 * "system", "user", "assistant" and "tool". The template is ChatML as in
 * Dream-Instruct's tokenizer_config.json: a first message that is not a
 * system message gets the default system message "You are a helpful
 * assistant."; add_generation_prompt (0 or 1) appends the assistant header.
 * *needed receives the size including the NUL; if capacity is smaller,
 * returns SMDIFF_E_BUFFER. SMDIFF_E_UNSUPPORTED if the model's vocabulary
 * has no ChatML tokens, SMDIFF_E_STATE if it has no tokenizer, SMDIFF_E_INVAL
 * for NULL pointers. Thread-safe. */
SMDIFF_API int32_t smdiff_chat_template(const smdiff_model *model, size_t n_messages,
                                        const char *const *roles, const char *const *contents,
                                        int32_t add_generation_prompt, char *buf,
                                        size_t capacity, size_t *needed);

/* Streaming detokenization: *n_complete receives the length of the longest
 * prefix of text[0..n_bytes) that does not end inside an incomplete (but so
 * far valid) UTF-8 character. Print that prefix and keep the remaining
 * bytes (at most 3) in front of the next piece; invalid bytes are never
 * held back, so nothing is held forever. Returns SMDIFF_E_INVAL for NULL
 * pointers. Thread-safe. */
SMDIFF_API int32_t smdiff_utf8_complete(const char *text, size_t n_bytes, size_t *n_complete);

/* ================================================== soft-mask schedule
 *
 * The soft-masking rule: for a still-masked position with predicted
 * distribution p from the previous step,
 *     e      = (1 - lambda) * E[MASK] + lambda * sum_{i in topk(p)} pi_i * E[v_i]
 *     lambda = scale * sigmoid(steepness * (-H(p) - centre))      (mode entropy)
 *     lambda = constant                                           (mode constant)
 *     lambda = 0                                                  (mode off)
 * gated to a window of the step budget and optionally faded out linearly
 * over that window. A schedule is a small value object; a sampler copies it.
 */
typedef struct smdiff_softmask smdiff_softmask;

#define SMDIFF_SM_OFF      0  /* binary masking (baseline) */
#define SMDIFF_SM_ENTROPY  1  /* lambda from the entropy rule (the paper's) */
#define SMDIFF_SM_CONSTANT 2  /* fixed lambda, the training-free variant */

/* Soft-mask schedule options, family 200. */
#define SMDIFF_SM_MODE            200  /* int 0..2 (SMDIFF_SM_*), default 1 */
#define SMDIFF_SM_TOPK            201  /* int 1..64, default 3: k, tokens mixed per position */
#define SMDIFF_SM_SCALE           202  /* double (0,1) open, default 1e-6: omega_s */
#define SMDIFF_SM_STEEPNESS       203  /* double (0,1e4], default 6.66: omega_a > 0 */
#define SMDIFF_SM_CENTRE          204  /* double [-1e4,0), default -0.75: omega_b < 0 */
#define SMDIFF_SM_CONSTANT_LAMBDA 205  /* double [0,1], default 0.5: lambda in constant mode */
#define SMDIFF_SM_WINDOW_START    206  /* double [0,1], default 0: first active fraction of steps */
#define SMDIFF_SM_WINDOW_END      207  /* double [0,1], default 1: active until this fraction */
#define SMDIFF_SM_FADE            208  /* int 0..1, default 0: fade lambda linearly to 0 over
                                          the window */
#define SMDIFF_SM_OPT_FIRST_      200
#define SMDIFF_SM_OPT_LAST_       208

/* Create a schedule with the reference defaults (mode entropy, k = 3,
 * omega = (1e-6, 6.66, -0.75), full window, no fade). Thread-safe. */
SMDIFF_API int32_t smdiff_softmask_create(smdiff_softmask **out);

/* Create a schedule from a loaded model's stored parameters
 * (smdiff.softmask.* metadata, docs/API.md), the reference defaults for
 * what the model does not store. SMDIFF_E_STATE if the model is not
 * loaded, SMDIFF_E_FORMAT naming the key for malformed metadata,
 * SMDIFF_E_UNSUPPORTED for a stored smdiff.softmask.temperature other
 * than 1 (smdiff mixes p at temperature 1). Thread-safe. */
SMDIFF_API int32_t smdiff_softmask_create_from_model(const smdiff_model *model,
                                                     smdiff_softmask **out);

/* Copy a schedule. Thread-safe for distinct destinations. */
SMDIFF_API int32_t smdiff_softmask_clone(const smdiff_softmask *src, smdiff_softmask **out);

/* Free a schedule. Accepts NULL. */
SMDIFF_API void smdiff_softmask_free(smdiff_softmask *sm);

/* Typed option access (see SMDIFF_SM_*). Setters and getters check the
 * key's family and type (SMDIFF_E_INVAL), setters the bounds
 * (SMDIFF_E_RANGE; NaN is always out of range) and also that window_start
 * <= window_end holds after the change (SMDIFF_E_RANGE); on failure the
 * schedule is unchanged. */
SMDIFF_API int32_t smdiff_softmask_set_int(smdiff_softmask *sm, int32_t key, int64_t value);
SMDIFF_API int32_t smdiff_softmask_set_double(smdiff_softmask *sm, int32_t key, double value);
SMDIFF_API int32_t smdiff_softmask_get_int(const smdiff_softmask *sm, int32_t key,
                                           int64_t *out);
SMDIFF_API int32_t smdiff_softmask_get_double(const smdiff_softmask *sm, int32_t key,
                                              double *out);

/* Describe / look up a schedule option; as smdiff_model_option_info.
 * For open bounds (scale in (0,1)) min/max report the closed limits and the
 * setter rejects the limit itself. Thread-safe. */
SMDIFF_API int32_t smdiff_softmask_option_info(int32_t key, const char **name,
                                               int32_t *type, double *min, double *max,
                                               double *def);
SMDIFF_API int32_t smdiff_softmask_option_key(const char *name, int32_t *key);

/* Detailed message of the last failing call on this schedule (the error
 * rule at the top); "" if none, "schedule is NULL" for NULL. Valid until the
 * next call on the schedule. */
SMDIFF_API const char *smdiff_softmask_last_error(const smdiff_softmask *sm);

/* lambda for one predicted distribution, as the sampler would use it,
 * into *out.
 *   probs[n]: a probability row (softmax of raw logits at temperature 1);
 *             it need not be normalised exactly, entropy uses it as given.
 *   step, n_steps: 0-based step index within the budget. At step 0 there
 *             is no previous prediction and lambda is 0.
 * Returns SMDIFF_E_INVAL for NULL pointers, n < 1 or step outside
 * [0, n_steps), SMDIFF_E_NUMERIC for an entry of probs that is NaN,
 * infinite or negative, or a non-finite entropy. Pure;
 * thread-safe for a schedule not being modified. */
SMDIFF_API int32_t smdiff_softmask_lambda(const smdiff_softmask *sm, const float *probs,
                                          size_t n, size_t step, size_t n_steps, double *out);

/* ============================================================= sampler
 *
 * A sampler runs the denoising loop for one request at a time. It owns its
 * workspace and its random stream, and holds a copy of a soft-mask
 * schedule once one is set. It is not tied to a model: pass the model to
 * each generate call. One sampler per thread; many samplers can share one
 * model.
 *
 * Defaults that depend on the model are settled at each run, for options
 * the caller did not set: the schedule is the model's stored one
 * (smdiff_softmask_create_from_model) until smdiff_sampler_set_softmask is
 * called; gen_length is its default clamped to the context left after the
 * prompt; steps is its default, at most that gen_length. The getters report
 * the options as set (or their defaults), not the settled values.
 */
typedef struct smdiff_sampler smdiff_sampler;

/* Sampler options, family 300. */
#define SMDIFF_SAMPLER_STEPS        300  /* int 1..1048576, default 64 (at most gen_length):
                                            denoising steps */
#define SMDIFF_SAMPLER_GEN_LENGTH   301  /* int 1..1048576, default 128 (at most the context
                                            left after the prompt): tokens to generate */
#define SMDIFF_SAMPLER_BLOCK_LENGTH 302  /* int 0..1048576, default 0 = one block (gen_length) */
#define SMDIFF_SAMPLER_TEMPERATURE  303  /* double [0,100], default 0 = greedy */
#define SMDIFF_SAMPLER_TOP_K        304  /* int 0..1048576, default 0 = off */
#define SMDIFF_SAMPLER_TOP_P        305  /* double (0,1], default 1 = off */
#define SMDIFF_SAMPLER_SEED         306  /* int 0..2^63-1, default 0 */
#define SMDIFF_SAMPLER_ALG_TEMP     307  /* double [0,100], default 0: position-sampling temperature */
#define SMDIFF_SAMPLER_THRESHOLD    308  /* double [0,1], default 0.9: confidence threshold strategy */
#define SMDIFF_SAMPLER_EPS          309  /* double [0,0.5], default 1e-3: Dream's final timestep */
#define SMDIFF_SAMPLER_THREADS      310  /* int 0..1024, default 0 = all online CPUs */
#define SMDIFF_SAMPLER_STOP_AT_EOS  311  /* int 0..1, default 1: finish early once EOS is committed
                                            and everything before it is decided; pad the rest */
#define SMDIFF_SAMPLER_SM_ACROSS_BLOCKS 312 /* int 0..1, default 0: also feed soft-mask
                                            predictions to masked positions outside the current
                                            block (logits for every masked position each step) */
#define SMDIFF_SAMPLER_REMDM_ETA    313  /* double [0,1], default 0.02: ReMDM's eta (remdm_cap's
                                            cap, remdm_loop's remasking probability) */
#define SMDIFF_SAMPLER_REMDM_T_ON   314  /* double [0,1], default 0.55: remdm_loop's loop start */
#define SMDIFF_SAMPLER_REMDM_T_OFF  315  /* double [0,1], default 0.05: remdm_loop's loop end */
#define SMDIFF_SAMPLER_REMDM_ALPHA_ON 316 /* double (0,1), default 0.9: remdm_loop's alpha */
#define SMDIFF_SAMPLER_OPT_FIRST_   300
#define SMDIFF_SAMPLER_OPT_LAST_    319 /* 317..319: the experimental section's
                                           SMDIFF_SAMPLER_CACHE* and _FACTOR */

/* Create a sampler with default options, the "maskgit_plus" strategy and
 * no schedule of its own (a run uses the model's). Thread-safe. */
SMDIFF_API int32_t smdiff_sampler_create(smdiff_sampler **out);

/* Free a sampler. Accepts NULL. */
SMDIFF_API void smdiff_sampler_free(smdiff_sampler *sampler);

/* Typed option access (see SMDIFF_SAMPLER_*), as the schedule's; describe
 * and look up an option as smdiff_model_option_info / _option_key. */
SMDIFF_API int32_t smdiff_sampler_set_int(smdiff_sampler *sampler, int32_t key,
                                          int64_t value);
SMDIFF_API int32_t smdiff_sampler_set_double(smdiff_sampler *sampler, int32_t key,
                                             double value);
SMDIFF_API int32_t smdiff_sampler_get_int(const smdiff_sampler *sampler, int32_t key,
                                          int64_t *out);
SMDIFF_API int32_t smdiff_sampler_get_double(const smdiff_sampler *sampler, int32_t key,
                                             double *out);
SMDIFF_API int32_t smdiff_sampler_option_info(int32_t key, const char **name,
                                              int32_t *type, double *min, double *max,
                                              double *def);
SMDIFF_API int32_t smdiff_sampler_option_key(const char *name, int32_t *key);

/* Choose the decoder strategy by its registered name (built-ins and those
 * added with smdiff_decoder_register). SMDIFF_E_NOT_FOUND if unknown; the
 * sampler keeps its previous strategy then. */
SMDIFF_API int32_t smdiff_sampler_set_strategy(smdiff_sampler *sampler, const char *name);

/* Name of the current strategy (storage valid while the sampler lives and
 * the strategy stays registered). */
SMDIFF_API int32_t smdiff_sampler_get_strategy(const smdiff_sampler *sampler,
                                               const char **out);

/* Copy a schedule into the sampler (the caller keeps and may free its
 * schedule); from now on runs use it instead of the model's own. */
SMDIFF_API int32_t smdiff_sampler_set_softmask(smdiff_sampler *sampler,
                                               const smdiff_softmask *sm);

/* Step callback, called after every denoising step with the canvas (step
 * is 0-based among the n_steps of the run).
 *   canvas[n]: token ids of the whole canvas (prompt first; masked
 *              positions hold the mask id)
 *   committed[n]: 1 where this step committed the position, else 0
 *   lambda[n]: the soft-mask weight each still-masked position will use in
 *              the next step (0 elsewhere)
 * Return 0 to continue, non-zero to abort (the run returns SMDIFF_E_ABORTED).
 * Called on the generating thread. Pass NULL to remove. */
typedef int32_t (*smdiff_step_fn)(size_t step, size_t n_steps, const int32_t *canvas,
                                  const uint8_t *committed, const float *lambda,
                                  size_t n, void *user_data);
SMDIFF_API int32_t smdiff_sampler_set_step_callback(smdiff_sampler *sampler,
                                                    smdiff_step_fn fn, void *user_data);

/* Abort callback, polled between steps and between layers. Return non-zero
 * to stop; the run returns SMDIFF_E_ABORTED. */
typedef int32_t (*smdiff_abort_fn)(void *user_data);
SMDIFF_API int32_t smdiff_sampler_set_abort_callback(smdiff_sampler *sampler,
                                                     smdiff_abort_fn fn, void *user_data);

/* Detailed message of the last failing call on this sampler (the error
 * rule at the top); "" if none, "sampler is NULL" for NULL. Valid until the
 * next call on the sampler. */
SMDIFF_API const char *smdiff_sampler_last_error(const smdiff_sampler *sampler);

/* Generate gen_length tokens after prompt[n_prompt], token ids (gen_length
 * and steps settled as the sampler section says).
 * out receives the generated ids only (not the prompt); capacity is its
 * length. *n_out receives how many were written: gen_length, or fewer
 * when generation stopped at EOS (the EOS itself is not counted).
 * Errors: SMDIFF_E_INVAL for an empty prompt, steps > gen_length, a
 * block_length that does not divide gen_length or steps that are not a
 * multiple of the number of blocks; SMDIFF_E_RANGE for prompt ids outside
 * the vocabulary, a gen_length set that does not fit the context after the
 * prompt, or a prompt that fills it (the message names the limit);
 * SMDIFF_E_FORMAT for malformed soft-mask metadata in the model (when no
 * schedule was set); SMDIFF_E_BUFFER if capacity < gen_length;
 * SMDIFF_E_NOT_FOUND if the strategy is no longer registered;
 * SMDIFF_E_ABORTED from the callbacks (docs/DECODING.md).
 * Thread-safe for distinct samplers sharing one model. */
SMDIFF_API int32_t smdiff_generate_tokens(smdiff_sampler *sampler, const smdiff_model *model,
                                          const int32_t *prompt, size_t n_prompt,
                                          int32_t *out, size_t capacity, size_t *n_out);

/* Generate text for a UTF-8 prompt. If chat is non-zero the prompt is
 * wrapped in the model's chat template as one user message. Two-call
 * pattern on text/capacity like smdiff_model_detokenize, except that the
 * generation is not repeated: on SMDIFF_E_BUFFER, call again with a larger
 * buffer and the same arguments to receive the cached result. */
SMDIFF_API int32_t smdiff_generate_text(smdiff_sampler *sampler, const smdiff_model *model,
                                        const char *prompt, int32_t chat, char *text,
                                        size_t capacity, size_t *n_out);

/* ======================================================================
 * EXPERIMENTAL SECTION
 * Visible only when the includer defines SMDIFF_EXPERIMENTAL before
 * including this header (as zstd's ZSTD_STATIC_LINKING_ONLY):
 *
 *     #define SMDIFF_EXPERIMENTAL
 *     #include <smdiff/smdiff.h>
 *
 * What is declared here may change or go between minor versions. Its
 * symbols live in the version node SMDIFF_EXPERIMENTAL_0.2 (renamed when
 * they change) and are left out of the ABI baseline that `make check-abi`
 * guards.
 * ====================================================================== */
#if defined(SMDIFF_EXPERIMENTAL) || defined(SMDIFF_BUILDING)

/* Number of threads smdiff's BLAS backend will use for calls made with the
 * given thread setting (0 = all online CPUs) -- a diagnostic. Thread-safe. */
SMDIFF_API int32_t smdiff_resolve_threads(int32_t requested, int32_t *out);

/* Name of the BLAS kernel in use (OpenBLAS's core name), static storage. */
SMDIFF_API const char *smdiff_blas_info(void);

/* The storage types of a loaded model file's tensors, with how many tensors
 * have each (what `smdiff info` prints): names[i] is a type as GGUF names
 * it ("F32", "F16", "BF16", "Q8_0", ...; static storage) and counts[i] the
 * number of tensors of that type, in ascending order of the type's GGUF
 * number. Two-call pattern: *n_out always receives the number of distinct
 * types; if capacity is smaller, returns SMDIFF_E_BUFFER and writes
 * nothing else (names and counts may be NULL when capacity is 0).
 * SMDIFF_E_STATE if the model is not loaded, SMDIFF_E_INVAL for a NULL
 * model or n_out. Thread-safe. */
SMDIFF_API int32_t smdiff_model_tensor_types(const smdiff_model *model, const char **names,
                                             size_t *counts, size_t capacity, size_t *n_out);


/* ---- Training (experimental) -------------------------------------------
 * A trainer holds a trainable F32 copy of a dream/llada model, an AdamW
 * optimizer, the training and validation tokens, and one random stream, so
 * a run is a function of its seed (docs/TRAINING.md). Options are set
 * before the model is initialised; afterwards setters return
 * SMDIFF_E_STATE. A trainer is used by one thread at a time. */
typedef struct smdiff_trainer smdiff_trainer;

#define SMDIFF_TRAIN_MDLM 0  /* masked diffusion ELBO (t ~ U(eps,1), 1/t weights) */
#define SMDIFF_TRAIN_AR   1  /* autoregressive next-token loss, causal attention */

/* Trainer options (set before the model is initialised). */
#define SMDIFF_TRAIN_BATCH         400  /* int 1..65536, default 8: sequences per step */
#define SMDIFF_TRAIN_SEQ_LEN       401  /* int 2..1048576, default 128: tokens per sequence */
#define SMDIFF_TRAIN_SEED          402  /* int 0..2^53, default 1 */
#define SMDIFF_TRAIN_OBJECTIVE     403  /* int 0..1, default SMDIFF_TRAIN_MDLM */
#define SMDIFF_TRAIN_SM            404  /* int 0..1, default 1: soft-masking two-pass training */
#define SMDIFF_TRAIN_SM_PROB       405  /* double [0,1], default 0.8: batches trained with SM */
#define SMDIFF_TRAIN_LR            406  /* double [0,1], default 3e-4: peak learning rate */
#define SMDIFF_TRAIN_SM_LR         407  /* double [0,1], default 1e-2: of the SM parameters
                                           (a step of about this size only where their gradient
                                           is well above AdamW's eps 1e-8: not near omega_s 1e-6,
                                           see smdiff_trainer_set_softmask) */
#define SMDIFF_TRAIN_WEIGHT_DECAY  408  /* double [0,1], default 0.01 (matrices only) */
#define SMDIFF_TRAIN_GRAD_CLIP     409  /* double [0,1e6], default 1: max global norm, 0 = off */
#define SMDIFF_TRAIN_WARMUP        410  /* int 0..2^31-1, default 0: linear warm-up steps */
#define SMDIFF_TRAIN_COSINE_STEPS  411  /* int 0..2^31-1, default 0 = constant after warm-up;
                                           else cosine decay to 10% of the peak at this step */
#define SMDIFF_TRAIN_THREADS       412  /* int 0..1024, default 0 = all online CPUs */
#define SMDIFF_TRAIN_MIN_T         413  /* double (0,1), default 1e-3: eps of t ~ U(eps,1) */
/* The shape of a model made by smdiff_trainer_init_new (ignored by
 * smdiff_trainer_init_from_file, whose file has its own); the defaults are
 * the bundled model's. */
#define SMDIFF_TRAIN_N_VOCAB       414  /* int 2..2^24, default 50258: vocabulary rows */
#define SMDIFF_TRAIN_N_EMBD        415  /* int 1..65536, default 160: width d (a multiple of n_head) */
#define SMDIFF_TRAIN_N_LAYER       416  /* int 1..1024, default 6 */
#define SMDIFF_TRAIN_N_HEAD        417  /* int 1..4096, default 5 */
#define SMDIFF_TRAIN_N_HEAD_KV     418  /* int 0..4096, default 0 = n_head; divides n_head */
#define SMDIFF_TRAIN_N_FF          419  /* int 1..1048576, default 512: feed-forward width */
#define SMDIFF_TRAIN_CONTEXT       420  /* int 0..1048576, default 0 = seq_len: context length
                                           the saved model declares (>= seq_len) */
#define SMDIFF_TRAIN_MASK_ID       421  /* int -1..2^24-1, default -1 = n_vocab - 1 */
#define SMDIFF_TRAIN_EOS_ID        422  /* int -1..2^24-1, default -1 = none */
/* Which position each output row predicts: 1 row i predicts position i + 1
 * (Dream's shifted logits), 0 position i (LLaDA), -1 the file's
 * diffusion.shift_logits or, from scratch, the architecture's default (on
 * for dream, off for llada); saved models record the choice. The use: adapt
 * an autoregressive model (trained with SMDIFF_TRAIN_AR, whose row i already
 * predicts token i + 1) into a masked diffusion model with 1, as Dream was
 * adapted from an AR model. A resumed run sets the same value again. */
#define SMDIFF_TRAIN_SHIFT_LOGITS  423  /* int -1..1, default -1 */
/* smdiff_trainer_resume refuses a state written with other hyper-parameters
 * (every option but threads and this one) unless this is 1: then the
 * current options apply and the differences go to the log. It also lets a
 * state without a checksum (written before 0.2) load. */
#define SMDIFF_TRAIN_RESUME_FORCE  424  /* int 0..1, default 0 */
#define SMDIFF_TRAIN_OPT_FIRST_    400
#define SMDIFF_TRAIN_OPT_LAST_     424

/* Create a trainer with default options. SMDIFF_E_INVAL if out is NULL. */
SMDIFF_API int32_t smdiff_trainer_create(smdiff_trainer **out);
/* Free a trainer. Accepts NULL. */
SMDIFF_API void smdiff_trainer_free(smdiff_trainer *trainer);

/* Typed option access (see SMDIFF_TRAIN_*), as the sampler's: setters check
 * the family, the type and the bounds (SMDIFF_E_INVAL, SMDIFF_E_RANGE) and
 * return SMDIFF_E_STATE once the model is initialised; on failure the
 * trainer is unchanged. */
SMDIFF_API int32_t smdiff_trainer_set_int(smdiff_trainer *trainer, int32_t key, int64_t value);
SMDIFF_API int32_t smdiff_trainer_set_double(smdiff_trainer *trainer, int32_t key, double value);
SMDIFF_API int32_t smdiff_trainer_get_int(const smdiff_trainer *trainer, int32_t key,
                                          int64_t *out);
SMDIFF_API int32_t smdiff_trainer_get_double(const smdiff_trainer *trainer, int32_t key,
                                             double *out);
/* Describe / look up a trainer option; as smdiff_model_option_info. */
SMDIFF_API int32_t smdiff_trainer_option_info(int32_t key, const char **name, int32_t *type,
                                              double *min, double *max, double *def);
SMDIFF_API int32_t smdiff_trainer_option_key(const char *name, int32_t *key);

/* Soft-masking parameters to start training from: omega_s (SMDIFF_SM_SCALE),
 * omega_a (SMDIFF_SM_STEEPNESS), omega_b (SMDIFF_SM_CENTRE) and k
 * (SMDIFF_SM_TOPK) are taken from the schedule (copied; the caller keeps
 * it); its other options are decoding settings and are ignored. They
 * override the values of the file or the paper's initial ones (1e-6, 6.66,
 * -0.75, k 3) that a trainer starts from otherwise. How fast omega_s
 * leaves the paper's 1e-6: AdamW moves a raw parameter by about
 * lr * m / (sqrt(v) + eps) per step, eps = 1e-8. The raw omega_s (its
 * logit r_s) has the gradient omega_s (1 - omega_s) dL/domega_s, far below
 * eps near omega_s = 1e-6, so the step is about (lr / eps) omega_s
 * dL/domega_s -- proportional to the gradient, not one learning rate (at
 * lr 1e-2 and omega_s 1e-6 numerically dL/domega_s itself). From there SM
 * opens only if it already helps the model (smdiff_eval_elbo_windows
 * measures that), and slowly: on the bundled 18M base, 0.03 learning rates
 * per step (docs/TRAINING.md, "Soft-masking parameters under AdamW"). Short
 * runs start omega_s higher. Call before the model is initialised:
 * SMDIFF_E_STATE afterwards, SMDIFF_E_INVAL for NULL. */
SMDIFF_API int32_t smdiff_trainer_set_softmask(smdiff_trainer *trainer,
                                               const smdiff_softmask *sm);

/* Initialise the model from a dream/llada/mdlm GGUF file (continued pretraining
 * or fine-tuning; any weight type is converted to F32), or from scratch
 * with the shape of the SMDIFF_TRAIN_N_* options (arch "dream", "llada" or
 * "mdlm", whose conditioning width is MDLM's 128;
 * weights ~ N(0, 0.02^2)). The file's tokenizer metadata is copied into
 * saved models. SMDIFF_E_STATE if already initialised, SMDIFF_E_IO /
 * SMDIFF_E_FORMAT for a bad file, SMDIFF_E_INVAL for an unknown
 * architecture or an inconsistent shape (the message names the option),
 * SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_trainer_init_from_file(smdiff_trainer *trainer, const char *path);
SMDIFF_API int32_t smdiff_trainer_init_new(smdiff_trainer *trainer, const char *arch);

/* Copy the tokenizer.* metadata of a GGUF file into the models this trainer
 * saves (for a model initialised from scratch). SMDIFF_E_IO, SMDIFF_E_FORMAT. */
SMDIFF_API int32_t smdiff_trainer_set_tokenizer_file(smdiff_trainer *trainer, const char *path);

/* Give the token ids to train and validate on (copied; documents already
 * separated by EOS). SMDIFF_E_INVAL if either has fewer tokens than one
 * sequence or an id outside the vocabulary; SMDIFF_E_STATE before init. */
SMDIFF_API int32_t smdiff_trainer_set_data(smdiff_trainer *trainer, const int32_t *train,
                                           size_t n_train, const int32_t *val, size_t n_val);

/* One optimizer step; *loss (may be NULL) gets the batch loss.
 * SMDIFF_E_NUMERIC if the loss or gradient is not finite (nothing changed,
 * the last good state can be saved); SMDIFF_E_STATE without model or data. */
SMDIFF_API int32_t smdiff_trainer_step(smdiff_trainer *trainer, double *loss);
/* Mean validation loss over n_batches fixed batches (no SM). */
SMDIFF_API int32_t smdiff_trainer_eval(smdiff_trainer *trainer, size_t n_batches, double *loss);
/* Steps taken so far (including those of a resumed run). */
SMDIFF_API int32_t smdiff_trainer_steps(const smdiff_trainer *trainer, int64_t *steps);

/* Where a run stands, for its log (smdiff_trainer_stats). */
typedef struct smdiff_train_stats {
    int64_t steps;           /* optimizer steps taken, a resumed run's included */
    double omega_s;          /* the soft-mask parameters now: sigmoid(r_s), */
    double omega_a;          /*   softplus(r_a) */
    double omega_b;          /*   and -softplus(r_b) of the trained raw r */
    double grad_r_s;         /* dloss/dr_s of the last step after gradient
                                clipping, the gradient AdamW saw (0 when the
                                step did not use soft-masking) */
    int32_t last_step_sm;    /* 1 if the last step used the SM two-pass */
    double flops;            /* matrix FLOPs of the training passes run so far
                                (an SM step: pass 1 forward, pass 2 forward and
                                backward; evaluations not counted); kept across
                                resume */
    double plain_step_flops; /* those of one nominal plain step: forward and
                                backward with the expected B*L*(1+min_t)/2 masked
                                rows (MDLM) or B*(L-1) rows (AR) */
    double compute;          /* flops / plain_step_flops: the run's cost in
                                plain-step equivalents (iso-compute arms) */
} smdiff_train_stats;

/* Fill *out with where the run stands (docs/TRAINING.md, "Iso-compute").
 * SMDIFF_E_INVAL for NULL, SMDIFF_E_STATE before the model is
 * initialised. */
SMDIFF_API int32_t smdiff_trainer_stats(const smdiff_trainer *trainer, smdiff_train_stats *out);

/* Write the model as a GGUF file that smdiff_model_load_file loads
 * (matrices in F32, or F16 when f16 is 1), and, if state_path is not NULL,
 * the exact training state for smdiff_trainer_resume with the options of
 * the run. Both writes are atomic (temporary file, fsync, rename: an
 * interrupted save leaves the previous files as they were) and both files
 * end with a checksum (docs/FORMATS.md). SMDIFF_E_IO on failure, a path
 * that exists and is not a regular file included. */
SMDIFF_API int32_t smdiff_trainer_save(smdiff_trainer *trainer, const char *model_path,
                                       int32_t f16, const char *state_path);
/* Continue a run from a state file written by smdiff_trainer_save: the
 * following steps give the same losses as an uninterrupted run with the
 * same seed, options, data and threads. Refused: a state whose checksum
 * does not match or that has none (SMDIFF_E_FORMAT; a flipped byte
 * anywhere in the file is caught), a shape mismatch (SMDIFF_E_FORMAT, the
 * message says which), a state written with other options
 * (SMDIFF_E_INVAL naming each differing option with both values, unless
 * SMDIFF_TRAIN_RESUME_FORCE is 1); SMDIFF_E_IO if unreadable. Nothing
 * changes when it fails. */
SMDIFF_API int32_t smdiff_trainer_resume(smdiff_trainer *trainer, const char *state_path);

/* Detailed message of the last failing call on this trainer (the error
 * rule at the top); "" if none, "trainer is NULL" for NULL. Valid until the
 * next call on the trainer. */
SMDIFF_API const char *smdiff_trainer_last_error(const smdiff_trainer *trainer);

/* Tokenize a corpus once into a token file for smdiff_trainer_set_data /
 * `smdiff train --tokens`: every file under paths (folders walked
 * recursively in name order, hidden entries skipped) is one document,
 * tokenized with model's tokenizer (no special-token parsing, no BOS) and
 * followed by eos_id; the file holds little-endian int32 ids and is written
 * atomically. *n_tokens and *n_documents may be NULL. SMDIFF_E_INVAL for
 * bad arguments or an empty corpus, SMDIFF_E_IO for unreadable input or an
 * unwritable output, or the tokenizer's error (e.g. SMDIFF_E_STATE for a
 * model without a tokenizer). Thread-safe for distinct outputs. */
SMDIFF_API int32_t smdiff_train_tokenize_corpus(const smdiff_model *model,
                                                const char *const *paths, size_t n_paths,
                                                int32_t eos_id, const char *out_path,
                                                size_t *n_tokens, size_t *n_documents);

/* ---- Conversion (experimental; docs/FORMATS.md) ------------------------ */

/* Progress of a long job: done of total units (bytes for conversion). */
typedef void (*smdiff_progress_fn)(uint64_t done, uint64_t total, void *user_data);

/* Convert a Hugging Face checkpoint folder of a Dream (DreamModel),
 * LLaDA (LLaDAModelLM) or MDLM (model_type "mdlm", docs/MODELS.md) model --
 * config.json, model.safetensors or
 * model-*.safetensors with its index, and the tokenizer files the loader of
 * smdiff_model_load_tokenizer reads -- into a GGUF file with llama.cpp's
 * keys and tensor names, written atomically at out_path.
 *   type_name      the file type of the 2-D weights: "f32", "f16", "bf16"
 *                  or any name smdiff_quantize takes ("q8_0", "q4_k_m",
 *                  ...), with the same per-tensor recipes (NULL: "f16");
 *                  norms and biases stay F32, and a type whose block does
 *                  not divide a row falls back as smdiff_quantize's
 *   tokenizer_pre  tokenizer.ggml.pre to record (NULL: "qwen2" for Dream,
 *                  "default" for LLaDA, as llama.cpp writes them, "gpt2"
 *                  for MDLM)
 *   name           general.name (NULL: the folder's name)
 *   progress       called after each tensor with bytes written and in
 *                  total (may be NULL)
 * SMDIFF_E_INVAL for NULL paths or an unknown type_name, SMDIFF_E_IO for
 * unreadable input or an unwritable output, SMDIFF_E_FORMAT for malformed
 * files (the message names the file, key or tensor), SMDIFF_E_UNSUPPORTED
 * for another architecture, SMDIFF_E_NOMEM. Thread-safe for distinct
 * outputs. */
SMDIFF_API int32_t smdiff_convert_hf(const char *hf_dir, const char *out_path, const char *type_name,
                                     const char *tokenizer_pre, const char *name,
                                     smdiff_progress_fn progress, void *user_data);

/* ---- Quantization (experimental; docs/FORMATS.md) ----------------------
 * Rewrite a GGUF model with its matrices in a block format (Q4_0 .. Q8_0,
 * the K-quants, IQ4_NL, IQ4_XS), as llama.cpp's quantiser does; the
 * result loads with smdiff_model_load_file and in llama.cpp. */

/* Quantizer options, family 700, given to smdiff_quantize as a list of
 * key/value pairs ended by key 0: {SMDIFF_QUANT_THREADS, 2, 0}. */
#define SMDIFF_QUANT_THREADS    700  /* int 0..1024, default 0 = all online CPUs */
#define SMDIFF_QUANT_PURE       701  /* int 0..1, default 0; 1 = every matrix in the named type:
                                        no mixture and no Q6_K output head (only the fallback
                                        for rows that are not whole blocks) */
#define SMDIFF_QUANT_OPT_FIRST_ 700
#define SMDIFF_QUANT_OPT_LAST_  701

/* What one storage type holds in a quantised file. */
typedef struct smdiff_quant_stat {
    char type[16];        /* ggml's name: "Q4_K", "Q6_K", "F32", ... */
    uint64_t n_tensors;   /* tensors stored in this type */
    uint64_t n_elements;
    uint64_t n_bytes;     /* their data in the output file */
    double rms_error;     /* root mean square of (stored value - original value) */
    double rms_value;     /* root mean square of the original values */
} smdiff_quant_stat;

/* The summary of a quantisation: one entry per output type (at most 16,
 * in the order of the tensors). */
typedef struct smdiff_quant_report {
    uint64_t in_bytes, out_bytes; /* tensor data of the input and the output */
    size_t n_types;
    smdiff_quant_stat types[16];
} smdiff_quant_report;

/* Quantise the GGUF file in_path (its tensors F32, F16 or BF16) into a new
 * GGUF file at out_path, written atomically.
 *   type_name  the file type, llama.cpp's names: "q4_0", "q4_1", "q5_0",
 *              "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l",
 *              "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "iq4_nl",
 *              "iq4_xs", "f16", "bf16", "f32"; "q3_k", "q4_k", "q5_k" are
 *              the _m mixtures (as in llama.cpp). The mixtures give some
 *              tensors more bits (docs/FORMATS.md lists which); norms and
 *              biases keep their type.
 *   options    key/value pairs of SMDIFF_QUANT_* ended by 0, or NULL
 *   progress   called after each tensor with bytes written and in total
 *              (may be NULL)
 *   report     receives the per-type summary (may be NULL)
 * SMDIFF_E_INVAL for NULL paths, an unknown type_name (the message lists
 * the names) or a bad option (SMDIFF_E_RANGE out of bounds),
 * SMDIFF_E_UNSUPPORTED for an input tensor already quantised,
 * SMDIFF_E_FORMAT for a malformed file or a weight that is not finite
 * (the message names the tensor), SMDIFF_E_IO, SMDIFF_E_NOMEM.
 * Deterministic: the same input gives the same bytes on any thread count.
 * Thread-safe for distinct outputs. */
SMDIFF_API int32_t smdiff_quantize(const char *in_path, const char *out_path, const char *type_name,
                                   const int64_t *options, smdiff_progress_fn progress, void *user_data,
                                   smdiff_quant_report *report);
/* Describe / look up a quantizer option; as smdiff_model_option_info. */
SMDIFF_API int32_t smdiff_quantize_option_info(int32_t key, const char **name, int32_t *type, double *min,
                                               double *max, double *def);
SMDIFF_API int32_t smdiff_quantize_option_key(const char *name, int32_t *key);
/* The file type names smdiff_quantize and smdiff_convert_hf accept, as one
 * comma-separated line (static storage). */
SMDIFF_API const char *smdiff_quantize_type_names(void);

/* ---- Evaluation (experimental; docs/TRAINING.md, docs/RESULTS.md) ----
 * Functions of a loaded model (whose weights are converted once per call to
 * what the computation needs) and plain arrays; they keep no state, so
 * their errors go to smdiff_last_error() only. All are deterministic given
 * their seeds and thread-safe for a shared model. */

/* Validation bound of a masked diffusion model: the MDLM ELBO in nats per
 * token (exp of it bounds the perplexity) on windows[n_windows * seq_len]
 * of token ids, with `draws` noise draws per window. The windows are
 * numbered from first_window; draw j of window i uses
 * t = eps + (1-eps)(u_i + j)/draws (u_i uniform: stratified in t) and a
 * Bernoulli(t) mask, all from the Philox stream (seed, i + 1), eps 1e-3.
 * So two models given the same windows and seed see the same t and masks,
 * and a long evaluation split into calls (first_window = windows already
 * done) gives the same draws as one call. two_pass = 1 gives the
 * soft-masking two-pass bound (pass 1's top-k predictions mixed into pass 2
 * with the model's own omega and k), the bound an SM model is trained on;
 * 0 the plain one. threads 0 = all. *n_masked (may be NULL) receives the
 * number of masked positions scored. SMDIFF_E_INVAL for bad arguments
 * (seq_len beyond the model's context included), SMDIFF_E_STATE for a
 * model that is not loaded, SMDIFF_E_RANGE for ids outside the vocabulary,
 * SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_eval_elbo(const smdiff_model *model, const int32_t *windows,
                                    size_t n_windows, size_t first_window, size_t seq_len,
                                    size_t draws, uint64_t seed, int32_t two_pass, int32_t threads,
                                    double *nll, size_t *n_masked);

/* The bounds of smdiff_eval_elbo window by window, single-pass and
 * two-pass under several soft-mask settings at once, all on the same noise
 * and from the same pass 1, so the differences are paired -- the go/no-go
 * of soft-masking for a base model (docs/TRAINING.md, "Go/no-go"): if the
 * two-pass bound with omega open is worse than the single-pass one, the
 * optimiser closes SM. Arguments as smdiff_eval_elbo, and
 *   schedules[n_schedules]  one two-pass bound each, with the schedule's
 *                 omega_s, omega_a, omega_b (SMDIFF_SM_SCALE, _STEEPNESS,
 *                 _CENTRE) and k (SMDIFF_SM_TOPK), as
 *                 smdiff_trainer_set_softmask takes them (the other options
 *                 are decoding settings, ignored); a NULL entry is the
 *                 model's own soft-mask (as two_pass = 1). n_schedules may
 *                 be 0 (schedules may then be NULL), at most 1024.
 *   window_nll    [n_windows * (1 + n_schedules)]: row i is window i's
 *                 bound in nats per token, the mean over its draws: column
 *                 0 single-pass, column 1 + j two-pass under schedules[j].
 * smdiff_eval_elbo's nll is the mean over windows of column 0 (two_pass 0)
 * or of the model's own two-pass column. Errors as smdiff_eval_elbo. */
SMDIFF_API int32_t smdiff_eval_elbo_windows(const smdiff_model *model, const int32_t *windows,
                                            size_t n_windows, size_t first_window, size_t seq_len,
                                            size_t draws, uint64_t seed,
                                            const smdiff_softmask *const *schedules,
                                            size_t n_schedules, int32_t threads,
                                            double *window_nll, size_t *n_masked);

/* Score sequences seqs[n * seq_len] with an autoregressive reference model
 * (one trained with SMDIFF_TRAIN_AR: causal attention, next-token loss).
 *   nll       [n] or NULL: mean negative log-likelihood, nats, of tokens
 *             1..seq_len-1 given their prefix (exp of the mean over all
 *             sequences is the generative perplexity);
 *   features  [n * n_embd] or NULL: the final hidden state (after the output
 *             norm) at the last position, MAUVE's features;
 *   n_embd    may be NULL: receives the model's width
 *             (SMDIFF_PROP_EMBED_DIM, to size features).
 * SMDIFF_E_INVAL (seq_len beyond the model's context included),
 * SMDIFF_E_STATE, SMDIFF_E_RANGE (ids), SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_eval_ar(const smdiff_model *model, const int32_t *seqs, size_t n,
                                  size_t seq_len, int32_t threads, double *nll, float *features,
                                  size_t *n_embd);

/* MAUVE (Pillutla et al., 2021) between model features p[n_p * dim] and
 * human features q[n_q * dim]: L2 normalisation, PCA to 90% explained
 * variance, k-means (k-means++ seeding from `seed`, 5 restarts) into
 * max(2, round(min(n_p, n_q) / 10)) clusters, divergence frontier with
 * scaling 5 over 25 mixture weights, area under it. 1 = same
 * distribution, near 0 = disjoint. SMDIFF_E_INVAL, SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_eval_mauve(const float *p, size_t n_p, const float *q, size_t n_q,
                                     size_t dim, uint64_t seed, double *score);

/* Unigram entropy, nats, of the token histogram of ids[n] (vocabulary
 * size vocab): low values expose repetition. SMDIFF_E_INVAL for bad
 * arguments, SMDIFF_E_RANGE for ids outside [0, vocab). */
SMDIFF_API int32_t smdiff_eval_unigram_entropy(const int32_t *ids, size_t n, size_t vocab,
                                               double *entropy);

/* What soft-masking feeds back at one masking rate (smdiff_eval_gate). */
typedef struct smdiff_gate_stats {
    size_t n_masked;          /* masked positions looked at */
    double median_entropy;    /* of the predictive distribution, nats */
    double top1;              /* share whose true token is the most probable */
    double topk;              /* share whose true token is among the k most
                                 probable (k: SMDIFF_SM_TOPK of the schedule) */
    double mean_lambda;       /* mean soft-mask weight */
    double lambda_above_001;  /* share with lambda > 0.01 */
    double lambda_above_01;   /* share with lambda > 0.1 */
} smdiff_gate_stats;

/* Mask held-out windows[n_windows * seq_len] at each rate t = rates[i] in
 * (0, 1] and look at the masked positions as a decoding step would: the
 * model's predictive entropy, whether the true token is its top-1 or among
 * its top-k, and the lambda that the schedule sm (NULL: the model's own,
 * smdiff_softmask_create_from_model) gives each position past the first
 * step. out[n_rates] receives the statistics. Masks come from a splitmix64
 * stream seeded with seed * 0x9E3779B97F4A7C15 + i for rate i, position p
 * masked when its draw's top 53 bits, as a fraction, are below t. A
 * masked position is judged by the row that predicts it: row p, or row
 * p - 1 for a model with shifted logits (SMDIFF_PROP_SHIFT_LOGITS), whose
 * position 0 has no such row and is never masked.
 * SMDIFF_E_INVAL for bad arguments (seq_len beyond the context included),
 * SMDIFF_E_STATE for a model that is not loaded, SMDIFF_E_RANGE for ids
 * outside the vocabulary, SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_eval_gate(const smdiff_model *model, const smdiff_softmask *sm,
                                    const int32_t *windows, size_t n_windows, size_t seq_len,
                                    const double *rates, size_t n_rates, uint64_t seed,
                                    smdiff_gate_stats *out);

/* ---- Tokenizer training (experimental; docs/TOKENIZER.md) -------------
 * Learn a byte-level BPE vocabulary from a corpus and write it as a
 * vocabulary-only GGUF tokenizer, the kind smdiff_model_save_tokenizer
 * writes and smdiff_model_load_tokenizer and `smdiff train --tokenizer`
 * read. */

#define SMDIFF_TOKENIZER_TRAIN_READING 0  /* splitting and counting the corpus */
#define SMDIFF_TOKENIZER_TRAIN_MERGING 1  /* learning merges */

/* Where training stands, for a progress display. */
typedef struct smdiff_tokenizer_train_progress {
    int32_t phase;            /* SMDIFF_TOKENIZER_TRAIN_* */
    size_t n_documents;       /* files read so far */
    size_t n_bytes;           /* their bytes */
    size_t n_words;           /* distinct pre-tokens so far */
    size_t n_merges;          /* merges learned */
    size_t n_tokens;          /* vocabulary so far (bytes + learned tokens) */
    size_t n_tokens_target;   /* vocab_size - n_specials: training ends here */
} smdiff_tokenizer_train_progress;

/* Called after every document read and every merge learned; return
 * non-zero to stop training (SMDIFF_E_ABORTED). */
typedef int32_t (*smdiff_tokenizer_train_fn)(const smdiff_tokenizer_train_progress *progress,
                                             void *user_data);

/* Train a byte-level BPE tokenizer on every file under paths[n_paths]
 * (folders walked recursively in name order, hidden entries skipped; each
 * file is one document) and write it to out_path atomically.
 *   vocab_size     total tokens: the 256 bytes + learned tokens + specials
 *   pre_tokenizer  the split rule, as in tokenizer.ggml.pre: "qwen2"
 *                  (recommended for code), "gpt2", "llama-bpe", "bailingmoe"
 *   specials       control tokens appended after the learned ones, in order
 *                  (may be NULL when n_specials is 0). <|endoftext|> (or
 *                  </s>, <|eos|>) becomes the EOS id, <|mask|> (or <mask>,
 *                  [MASK]) the mask id, <s>/<|bos|>/<|startoftext|> the BOS
 *                  id (never added by tokenize), <pad>/<|pad|>/[PAD] the
 *                  padding id.
 *   progress       may be NULL.
 * Merges are chosen by highest pair count, ties broken by the smaller left
 * token id, then the smaller right id; the output is a function of the
 * corpus bytes, the paths' order and the arguments alone.
 * SMDIFF_E_INVAL for a NULL or empty argument, a vocab_size below
 * 256 + n_specials or above 2^24, an empty or duplicated special, an empty
 * corpus, or a corpus too small to reach vocab_size (the message says the
 * largest size it supports); SMDIFF_E_UNSUPPORTED for an unknown
 * pre-tokenizer; SMDIFF_E_IO for an unreadable path, a named path that is
 * neither a regular file nor a folder (e.g. a FIFO), or an unwritable
 * output; SMDIFF_E_NOMEM; SMDIFF_E_ABORTED. Errors go to
 * smdiff_last_error(). Thread-safe. */
SMDIFF_API int32_t smdiff_tokenizer_train(const char *const *paths, size_t n_paths, size_t vocab_size,
                                          const char *pre_tokenizer, const char *const *specials,
                                          size_t n_specials, const char *out_path,
                                          smdiff_tokenizer_train_fn progress, void *user_data);

/* ---- Infilling (experimental; docs/DECODING.md, "Infilling") ----------
 * A canvas is a sequence of token ids in which every position holding the
 * model's mask id (SMDIFF_PROP_MASK_ID) is to be filled and every other
 * position is context: a prefix and a suffix around a span, several spans,
 * anything. Context anywhere is attended to in both directions. The
 * sampler's options apply as to smdiff_generate_tokens, with the masked
 * positions in canvas order in the role of the generation: block_length
 * cuts them into blocks decoded in that order (it must divide their
 * number), steps must be a multiple of the number of blocks and, unless
 * the strategy re-masks, at most their number; gen_length is not used.
 * Every strategy and soft-masking work as for a prompt. EOS handling
 * (SMDIFF_SAMPLER_STOP_AT_EOS) works per span of consecutive masked
 * positions: once a span has an EOS with everything before it in the span
 * decided, the rest of that span becomes EOS (padding); context, the
 * suffix included, is never changed. A canvas that is a prompt followed by
 * gen_length masks decodes exactly as smdiff_generate_tokens does. */

/* Fill the masked positions of canvas[n_canvas] in place; on failure the
 * canvas is unchanged. Errors: SMDIFF_E_INVAL for NULL pointers, a canvas
 * without a mask, a mask at position 0 of a model with shifted logits
 * (nothing predicts it), or blocks and steps that do not fit the masked
 * positions (as above); SMDIFF_E_RANGE for ids outside the vocabulary or a
 * canvas longer than the context; SMDIFF_E_STATE for a model not loaded;
 * SMDIFF_E_NOT_FOUND, SMDIFF_E_ABORTED, SMDIFF_E_NUMERIC as
 * smdiff_generate_tokens. Thread-safe for distinct samplers sharing one
 * model. */
SMDIFF_API int32_t smdiff_generate_canvas(smdiff_sampler *sampler, const smdiff_model *model,
                                          int32_t *canvas, size_t n_canvas);

/* Text infilling: the canvas is prefix (may be "" for a model without
 * shifted logits), gen_length masks, then suffix (may be ""), each
 * tokenized with SMDIFF_TOKENIZE_PARSE_SPECIAL; text receives the filled
 * span as UTF-8, up to its first EOS when SMDIFF_SAMPLER_STOP_AT_EOS is on
 * (special tokens are not rendered). Two-call pattern as
 * smdiff_generate_text: on SMDIFF_E_BUFFER (*n_out holds the size), call
 * again with the same arguments and a larger buffer to receive the cached
 * result without decoding again. Errors as smdiff_generate_canvas, and the
 * tokenizer's (SMDIFF_E_STATE for a model without one). */
SMDIFF_API int32_t smdiff_generate_infill_text(smdiff_sampler *sampler, const smdiff_model *model,
                                               const char *prefix, const char *suffix, char *text,
                                               size_t capacity, size_t *n_out);

/* ---- Server (experimental; docs/SERVER.md) -----------------------------
 * An OpenAI-compatible HTTP/1.1 server for one loaded model, on libuv:
 * POST /v1/completions and /v1/chat/completions (streamed as server-sent
 * events on request, with smdiff's per-step events), GET /v1/models,
 * /health, /metrics (Prometheus text) and a playground page at /.
 * Generations run on SMDIFF_SERVER_SLOTS worker threads, each request with
 * its own sampler on the shared model; up to SMDIFF_SERVER_QUEUE more wait,
 * and beyond that requests get 429 with Retry-After at once. A client that
 * disconnects, or a request past SMDIFF_SERVER_TIMEOUT, stops its
 * generation at the next denoising step.
 *
 * Use: smdiff_server_create, set options, smdiff_server_listen (binds;
 * smdiff_server_port then tells the port), smdiff_server_run (serves on
 * the calling thread until smdiff_server_stop), smdiff_server_free. A
 * server listens and runs once. Setters return SMDIFF_E_STATE after
 * listen. Every failing call records its message on the server
 * (smdiff_server_last_error) and in the thread's slot (smdiff_last_error).
 * While it runs, the calling thread blocks SIGPIPE (a peer that closed
 * makes a write fail, not kill the process); the mask is restored after. */
typedef struct smdiff_server smdiff_server;

#define SMDIFF_SERVER_OPT_FIRST_       600
#define SMDIFF_SERVER_PORT             600 /* int 0..65535, default 8080; 0 = any free port */
#define SMDIFF_SERVER_SLOTS            601 /* int 1..1024, default 1: generations at once */
#define SMDIFF_SERVER_QUEUE            602 /* int 0..1048576, default 8: requests that may wait
                                              for a slot; more get 429 */
#define SMDIFF_SERVER_TIMEOUT          603 /* double [0,1e6] s, default 300, 0 = none: limit per
                                              generation from its arrival (504 past it) */
#define SMDIFF_SERVER_READ_TIMEOUT     604 /* double (0,3600] s, default 10: time to receive a whole
                                              request once a connection is free (slowloris, idle
                                              keep-alive); then it is closed */
#define SMDIFF_SERVER_MAX_BODY         605 /* int 1..2^30 bytes, default 1 MiB; larger gets 413 */
#define SMDIFF_SERVER_MAX_HEADER       606 /* int 256..2^20 bytes, default 16 KiB: request line and
                                              headers; larger gets 431 (414 for the target) */
#define SMDIFF_SERVER_MAX_CONNECTIONS  607 /* int 1..2^20, default 1024: more are closed at once */
#define SMDIFF_SERVER_MAX_TOKENS       608 /* int 0..2^20, default 0 = the model's context: most
                                              tokens one request may generate */
#define SMDIFF_SERVER_THREADS          609 /* int 0..1024, default 0 = all CPUs:
                                              SMDIFF_SAMPLER_THREADS of each generation */
#define SMDIFF_SERVER_SHUTDOWN_GRACE   610 /* double [0,3600] s, default 10: after stop, running
                                              generations may finish for this long */
#define SMDIFF_SERVER_OPT_LAST_        610

/* Create a server for a loaded model (the server holds a reference; the
 * caller may free its own). Host "127.0.0.1", model name the file's
 * general.name or else its architecture. SMDIFF_E_INVAL for NULL,
 * SMDIFF_E_STATE if the model is not loaded, SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_server_create(smdiff_model *model, smdiff_server **out);

/* Free a server that never listened or whose run returned (a server that
 * listened but never ran is stopped and run to its end first). Accepts
 * NULL. */
SMDIFF_API void smdiff_server_free(smdiff_server *server);

/* Typed option access (SMDIFF_SERVER_*), as the sampler's: SMDIFF_E_INVAL
 * for a key of another family or the wrong type, SMDIFF_E_RANGE out of
 * bounds; setters SMDIFF_E_STATE once listening. */
SMDIFF_API int32_t smdiff_server_set_int(smdiff_server *server, int32_t key, int64_t value);
SMDIFF_API int32_t smdiff_server_set_double(smdiff_server *server, int32_t key, double value);
SMDIFF_API int32_t smdiff_server_get_int(const smdiff_server *server, int32_t key, int64_t *out);
SMDIFF_API int32_t smdiff_server_get_double(const smdiff_server *server, int32_t key, double *out);
SMDIFF_API int32_t smdiff_server_option_info(int32_t key, const char **name, int32_t *type,
                                             double *min, double *max, double *def);
SMDIFF_API int32_t smdiff_server_option_key(const char *name, int32_t *key);

/* The address to bind, numeric or a name ("127.0.0.1", "::1", "0.0.0.0",
 * "localhost"). Binding beyond loopback exposes the server: see the
 * security notes of docs/SERVER.md. SMDIFF_E_INVAL for NULL or "". */
SMDIFF_API int32_t smdiff_server_set_host(smdiff_server *server, const char *host);

/* Require "Authorization: Bearer KEY" on /v1/ endpoints (401 otherwise);
 * NULL or "" removes the requirement. The string is copied. */
SMDIFF_API int32_t smdiff_server_set_api_key(smdiff_server *server, const char *key);

/* The model id reported by /v1/models and accepted in requests' "model"
 * field (another id gets 404). SMDIFF_E_INVAL for NULL or "". */
SMDIFF_API int32_t smdiff_server_set_model_name(smdiff_server *server, const char *name);

/* Bind and listen, start the worker threads. SMDIFF_E_IO when the address
 * cannot be resolved or bound (the message says why, e.g. "address already
 * in use"), SMDIFF_E_THREAD, SMDIFF_E_STATE if already listening. */
SMDIFF_API int32_t smdiff_server_listen(smdiff_server *server);

/* The port the server listens on (the one chosen for port 0).
 * SMDIFF_E_STATE before listen. */
SMDIFF_API int32_t smdiff_server_port(const smdiff_server *server, int32_t *out);

/* Serve on the calling thread until smdiff_server_stop; then finish as
 * described at SMDIFF_SERVER_SHUTDOWN_GRACE and return SMDIFF_OK.
 * SMDIFF_E_STATE before listen or after a run. */
SMDIFF_API int32_t smdiff_server_run(smdiff_server *server);

/* Ask a running (or listening) server to stop: it stops accepting, answers
 * waiting requests 503, lets running generations finish within the grace
 * and aborts the rest, then run returns. Safe from any thread and from a
 * signal handler (it only stores a flag and wakes the loop); calling it
 * before run makes run stop at once. For that reason it is the one call
 * that records no message: NULL gives SMDIFF_E_INVAL and nothing else. */
SMDIFF_API int32_t smdiff_server_stop(smdiff_server *server);

/* Detailed message of the last failure on this server (the error rule at
 * the top); "" if none, "server is NULL" for NULL. Valid until the next
 * call on the server. */
SMDIFF_API const char *smdiff_server_last_error(const smdiff_server *server);

/* ---- Files (experimental; docs/RELIABILITY.md) ---- */

/* Write data[n] to path atomically, as smdiff writes its own outputs: a
 * temporary file ".NAME.smdiff-tmp.PID.N" beside path, every write checked,
 * fsync, rename over path, fsync of the folder; temporary files of
 * interrupted writes to path whose process is gone are removed first. On
 * failure path keeps its previous contents (or stays absent) and no
 * temporary file is left. An existing path that is not a regular file (a
 * folder, FIFO, device, socket) is refused, never replaced; a symbolic link
 * to a regular file is followed. SMDIFF_E_INVAL for a NULL path (or NULL
 * data with n > 0), SMDIFF_E_IO with the system's reason, SMDIFF_E_NOMEM.
 * Thread-safe for distinct paths. */
SMDIFF_API int32_t smdiff_write_file(const char *path, const void *data, size_t n);

/* ---- Block caches and parallel rules (experimental; docs/DECODING.md,
 * "Caches") ---------------------------------------------------------------
 * Sampler options of the sampler family (smdiff_sampler_set_int /
 * _set_double), declared here while they are experimental. */
#define SMDIFF_SAMPLER_CACHE        317  /* int 0..2, default SMDIFF_CACHE_OFF: Fast-dLLM's
                                            block caches of keys and values (dream, llada;
                                            generation on an mdlm model with a cache fails
                                            with SMDIFF_E_UNSUPPORTED) */
#define SMDIFF_SAMPLER_CACHE_REFRESH 318 /* int 0..1048576, default 0: with a cache, recompute
                                            every row (and the whole cache) at a block's first
                                            step and, when N > 0, every N-th step of a block;
                                            1 = every step, exactly the uncached run */
#define SMDIFF_SAMPLER_FACTOR       319  /* double (0,1000], default 1: the "factor" strategy's
                                            f (Fast-dLLM's factor rule) */

#define SMDIFF_CACHE_OFF    0 /* every step computes every row (exact) */
#define SMDIFF_CACHE_PREFIX 1 /* steps between refreshes compute the rows from the
                                 block's start to the end of the canvas against the
                                 cached keys and values of the rows before it */
#define SMDIFF_CACHE_DUAL   2 /* steps between refreshes compute only the block's rows
                                 (and, with shifted logits, the rows predicting them)
                                 against the cached keys and values of all others */

/* ---- Batched generation (experimental; docs/DECODING.md, "Batches") ----
 * A batch advances several sequences together -- each with its own sampler
 * (options, strategy, soft-mask, seed, callbacks), its own prompt or
 * canvas and length -- with one forward pass per step over the rows all of
 * them need: the products with the weights are shared, the attention is
 * each sequence's own. A sequence decodes exactly as it would alone
 * (tokens and steps; tested), and sequences may be added and removed
 * between steps (a server's slots). A batch belongs to one thread at a
 * time; its samplers are used only through it while they run in it
 * (smdiff_generate_* on them fail with SMDIFF_E_STATE meanwhile). A
 * sampler's abort callback is polled before each step of its sequence
 * (not between layers of the shared pass); its step callback is called as
 * for a lone run. */
typedef struct smdiff_batch smdiff_batch;

/* Batch options, family 800. */
#define SMDIFF_BATCH_CAPACITY  800  /* int 1..4096, default 8: sequences held at once
                                       (running or finished and not yet removed) */
#define SMDIFF_BATCH_OPT_FIRST_ 800
#define SMDIFF_BATCH_OPT_LAST_  800

/* Create an empty batch for a loaded model (the batch keeps a reference
 * to it). SMDIFF_E_INVAL, SMDIFF_E_STATE (not loaded), SMDIFF_E_NOMEM. */
SMDIFF_API int32_t smdiff_batch_create(smdiff_model *model, smdiff_batch **out);
/* Free a batch; its samplers leave it and may run again. Accepts NULL. */
SMDIFF_API void smdiff_batch_free(smdiff_batch *batch);

/* Typed option access (see SMDIFF_BATCH_*), as the sampler's. Lowering
 * the capacity below the sequences held is refused (SMDIFF_E_STATE). */
SMDIFF_API int32_t smdiff_batch_set_int(smdiff_batch *batch, int32_t key, int64_t value);
SMDIFF_API int32_t smdiff_batch_get_int(const smdiff_batch *batch, int32_t key, int64_t *out);
SMDIFF_API int32_t smdiff_batch_option_info(int32_t key, const char **name, int32_t *type, double *min,
                                            double *max, double *def);
SMDIFF_API int32_t smdiff_batch_option_key(const char *name, int32_t *key);

/* Add a sequence decoded by sampler: a prompt (is_canvas 0) followed by
 * gen_length masks, as smdiff_generate_tokens, or a canvas whose masks are
 * filled (is_canvas 1), as smdiff_generate_canvas. ids are copied. *id
 * receives the sequence's handle (the smallest free one, from 0). Errors
 * as the single-sequence calls (recorded on the sampler and the batch);
 * SMDIFF_E_STATE when the batch is full or the sampler already runs a
 * sequence; nothing is added then. */
SMDIFF_API int32_t smdiff_batch_add(smdiff_batch *batch, smdiff_sampler *sampler, const int32_t *ids,
                                    size_t n_ids, int32_t is_canvas, size_t *id);

/* One step of every running sequence, one forward pass for all. *n_running
 * (may be NULL) receives how many still run afterwards. A sequence that
 * fails (strategy error, callbacks, NaN logits) stops with its error
 * (smdiff_batch_result) and the others go on. Returns an error only when
 * the shared pass could not run (SMDIFF_E_NOMEM; no sequence advanced). */
SMDIFF_API int32_t smdiff_batch_step(smdiff_batch *batch, size_t *n_running);

/* Step until no sequence runs. Errors as smdiff_batch_step. */
SMDIFF_API int32_t smdiff_batch_run(smdiff_batch *batch);

/* The result of sequence id: SMDIFF_E_STATE while it runs; the error that
 * stopped it; or SMDIFF_OK with, for a prompt, out[capacity] the generated
 * ids and *n_out how many precede the first EOS (as
 * smdiff_generate_tokens), for a canvas out the filled canvas and *n_out
 * its length. SMDIFF_E_BUFFER when capacity is short, SMDIFF_E_NOT_FOUND
 * for an unknown id. */
SMDIFF_API int32_t smdiff_batch_result(smdiff_batch *batch, size_t id, int32_t *out, size_t capacity,
                                       size_t *n_out);

/* Remove sequence id, finished or not; its sampler may run again.
 * SMDIFF_E_NOT_FOUND for an unknown id. */
SMDIFF_API int32_t smdiff_batch_remove(smdiff_batch *batch, size_t id);

/* Detailed message of the last failing call on this batch (the error rule
 * at the top); "" if none, "batch is NULL" for NULL. */
SMDIFF_API const char *smdiff_batch_last_error(const smdiff_batch *batch);

#endif /* SMDIFF_EXPERIMENTAL */

#ifdef __cplusplus
}
#endif

#endif /* SMDIFF_H */
