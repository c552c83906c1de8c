#include <string.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/error.h"
#include "decoder.h"

#define MAX_DECODERS 64

typedef struct {
    smdiff_decoder vt;
    void *user_data;
    char name[64];
    char *description;
    int builtin;
} entry;

static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_mutex;
static int registry_ok = 0;
static entry registry[MAX_DECODERS];
static int32_t registry_n = 0;

/* The version-1 layout ends after `release`; version 2 adds the
 * declaration (schedule, confidence, needs, scratch_per_position), then
 * appended fields (remask, final) read when struct_size covers them. */
#define V1_SIZE (offsetof(smdiff_decoder, release) + sizeof(void (*)(void *)))
#define V2_SIZE (offsetof(smdiff_decoder, scratch_per_position) + sizeof(size_t))

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* Check d's version, size and declaration, and copy it into *vt with the
 * version-1 defaults filled in (needs 0 becomes SMDIFF_NEED_ALL). */
static int32_t normalize(const smdiff_decoder *d, smdiff_decoder *vt) {
    if (d->abi_version != 1 && d->abi_version != SMDIFF_DECODER_ABI_VERSION)
        return sd_fail(NULL, SMDIFF_E_UNSUPPORTED, "decoder abi_version %u not supported (1 or %d)",
                       d->abi_version, SMDIFF_DECODER_ABI_VERSION);
    size_t need = d->abi_version == 1 ? V1_SIZE : V2_SIZE;
    if (d->struct_size < need)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder struct_size %u smaller than version %u's layout (%zu)",
                       d->struct_size, d->abi_version, need);
    /* Version 2 grows by appending: copy what the caller's struct has;
     * fields it lacks keep their zero default, and fields this library
     * does not know must be zero (else the caller expects a behaviour it
     * would not get). */
    size_t have = d->abi_version == 1 ? V1_SIZE : d->struct_size < sizeof *vt ? d->struct_size : sizeof *vt;
    for (size_t i = sizeof *vt; d->abi_version != 1 && i < d->struct_size; i++)
        if (((const unsigned char *)d)[i])
            return sd_fail(NULL, SMDIFF_E_UNSUPPORTED,
                           "decoder struct_size %u declares fields this library (%zu bytes) does not know",
                           d->struct_size, sizeof *vt);
    memset(vt, 0, sizeof *vt);
    memcpy(vt, d, have); /* a version-1 struct keeps the zero (default) declaration */
    vt->struct_size = sizeof *vt;
    if (vt->schedule < SMDIFF_SCHEDULE_TIMESTEP || vt->schedule > SMDIFF_SCHEDULE_UNTIL_DONE)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder schedule %d is not a SMDIFF_SCHEDULE_* value",
                       (int)vt->schedule);
    if (vt->confidence < SMDIFF_CONFIDENCE_SAMPLED || vt->confidence > SMDIFF_CONFIDENCE_RAW)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder confidence %d is not a SMDIFF_CONFIDENCE_* value",
                       (int)vt->confidence);
    if (vt->needs & ~SMDIFF_NEED_ALL)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder needs 0x%x has bits outside SMDIFF_NEED_ALL",
                       (unsigned)vt->needs);
    if (vt->needs == 0) vt->needs = SMDIFF_NEED_ALL;
    if (vt->remask != 0 && vt->remask != 1)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder remask %d is not 0 or 1", (int)vt->remask);
    if (vt->final != SMDIFF_FINAL_COMMIT_ALL && vt->final != SMDIFF_FINAL_ARGMAX)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder final %d is not a SMDIFF_FINAL_* value", (int)vt->final);
    if (vt->scratch_per_position > SMDIFF_DECODER_MAX_SCRATCH)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder scratch_per_position %zu above %d bytes",
                       vt->scratch_per_position, SMDIFF_DECODER_MAX_SCRATCH);
    return SMDIFF_OK;
}

static int32_t add_locked(const smdiff_decoder *d, void *user_data, int builtin) {
    if (!d || !d->select || !d->name)
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder needs a name and a select callback");
    smdiff_decoder vt;
    int32_t rc = normalize(d, &vt);
    if (rc) return rc;
    if (!valid_name(d->name))
        return sd_fail(NULL, SMDIFF_E_INVAL, "decoder name must be 1-63 of [a-z0-9_]");
    for (int32_t i = 0; i < registry_n; i++)
        if (strcmp(registry[i].name, d->name) == 0)
            return sd_fail(NULL, SMDIFF_E_STATE, "decoder '%s' is already registered", d->name);
    if (registry_n == MAX_DECODERS)
        return sd_fail(NULL, SMDIFF_E_NOMEM, "decoder registry full (%d entries)", MAX_DECODERS);
    /* Built-ins describe themselves with static strings; copying them would
     * leave allocations alive forever and pin the allocator hooks. */
    char *desc = NULL;
    if (!builtin && d->description && !(desc = sd_strdup(d->description)))
        return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory registering a decoder");
    entry *e = &registry[registry_n++];
    memset(e, 0, sizeof *e);
    e->vt = vt;
    strcpy(e->name, d->name);
    e->vt.name = e->name;
    e->description = desc;
    e->vt.description = builtin ? d->description : desc;
    e->user_data = user_data;
    e->builtin = builtin;
    return SMDIFF_OK;
}

static void registry_init(void) {
    if (uv_mutex_init(&registry_mutex) != 0) return;
    registry_ok = 1;
    for (int i = 0; sd_builtin_decoders[i]; i++) add_locked(sd_builtin_decoders[i], NULL, 1);
}

static int32_t lock(void) {
    uv_once(&registry_once, registry_init);
    if (!registry_ok) return sd_fail(NULL, SMDIFF_E_THREAD, "decoder registry mutex failed");
    uv_mutex_lock(&registry_mutex);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_decoder_register(const smdiff_decoder *decoder, void *user_data) {
    if (!decoder) return sd_fail(NULL, SMDIFF_E_INVAL, "decoder is NULL");
    int32_t rc = lock();
    if (rc) return rc;
    rc = add_locked(decoder, user_data, 0);
    uv_mutex_unlock(&registry_mutex);
    return rc;
}

SMDIFF_API int32_t smdiff_decoder_unregister(const char *name) {
    if (!name) return sd_fail(NULL, SMDIFF_E_INVAL, "name is NULL");
    int32_t rc = lock();
    if (rc) return rc;
    rc = sd_fail(NULL, SMDIFF_E_NOT_FOUND, "no decoder named '%s'", name);
    for (int32_t i = 0; i < registry_n; i++) {
        if (strcmp(registry[i].name, name) != 0) continue;
        if (registry[i].builtin) {
            rc = sd_fail(NULL, SMDIFF_E_STATE, "built-in decoder '%s' cannot be removed", name);
            break;
        }
        entry gone = registry[i];
        memmove(&registry[i], &registry[i + 1], (size_t)(registry_n - i - 1) * sizeof(entry));
        registry_n--;
        /* Entries moved: re-point their name fields at their own storage. */
        for (int32_t j = i; j < registry_n; j++) registry[j].vt.name = registry[j].name;
        uv_mutex_unlock(&registry_mutex);
        if (gone.vt.release) gone.vt.release(gone.user_data);
        sd_free(gone.description);
        return SMDIFF_OK;
    }
    uv_mutex_unlock(&registry_mutex);
    return rc;
}

SMDIFF_API int32_t smdiff_decoder_count(size_t *out) {
    if (!out) return sd_fail(NULL, SMDIFF_E_INVAL, "out is NULL");
    int32_t rc = lock();
    if (rc) return rc;
    *out = (size_t)registry_n;
    uv_mutex_unlock(&registry_mutex);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_decoder_name(size_t index, const char **name,
                                       const char **description) {
    if (!name) return sd_fail(NULL, SMDIFF_E_INVAL, "name is NULL");
    int32_t rc = lock();
    if (rc) return rc;
    if (index >= (size_t)registry_n) {
        uv_mutex_unlock(&registry_mutex);
        return sd_fail(NULL, SMDIFF_E_RANGE, "decoder index %zu outside 0..%d", index, (int)registry_n - 1);
    }
    *name = registry[index].name;
    if (description) *description = registry[index].vt.description ? registry[index].vt.description : "";
    uv_mutex_unlock(&registry_mutex);
    return SMDIFF_OK;
}

int32_t sd_decoder_lookup(const char *name, smdiff_decoder *vt, void **user_data) {
    int32_t rc = lock();
    if (rc) return rc;
    int32_t found = 0;
    for (int32_t i = 0; i < registry_n && !found; i++) {
        if (strcmp(registry[i].name, name) == 0) {
            *vt = registry[i].vt;
            *user_data = registry[i].user_data;
            found = 1;
        }
    }
    uv_mutex_unlock(&registry_mutex);
    /* A success leaves the thread's message alone (the header's rule). */
    return found ? SMDIFF_OK
                 : sd_fail(NULL, SMDIFF_E_NOT_FOUND, "no decoder strategy named '%s'", name);
}
