/* slots.c -- generation slots: one worker thread advancing every running
 * job together as the sequences of one smdiff_batch (one forward pass per
 * step for all of them: the weights are read once for the batch, the
 * attention is each sequence's own), taking jobs from one FIFO queue into
 * free slots between steps. Admission (slots + queue capacity, else 429)
 * is the router's, counted on the loop thread from submission until the
 * finished response is delivered, so a client that has its answer always
 * finds its slot free again. Jobs never wait on the event loop and the
 * loop never waits on a job: the queue's lock is held only to link and
 * unlink. */
#include "core/alloc.h"
#include "core/log.h"
#include "serve.h"

struct sd_slots {
    uv_mutex_t mu;
    uv_cond_t cv;
    sd_job *head, *tail;
    size_t waiting, busy;
    int quit;
    uv_thread_t thread;
    int started;
    size_t n_slots;
    smdiff_batch *batch;
    sd_job **job;   /* [n_slots] the job of each sequence id, NULL when free */
    sd_metrics *metrics;
};

/* The next queued job, or NULL (the caller holds the lock). */
static sd_job *pop(sd_slots *s) {
    sd_job *j = s->head;
    if (!j) return NULL;
    s->head = j->next;
    if (!s->head) s->tail = NULL;
    j->next = NULL;
    s->waiting--;
    s->busy++;
    return j;
}

static void slot_done(sd_slots *s) {
    uv_mutex_lock(&s->mu);
    s->busy--;
    uv_mutex_unlock(&s->mu);
}

/* Queued jobs into free slots while there are both. Returns the running
 * count. */
static size_t admit(sd_slots *s, size_t running) {
    for (;;) {
        uv_mutex_lock(&s->mu);
        sd_job *j = running < s->n_slots ? pop(s) : NULL;
        uv_mutex_unlock(&s->mu);
        if (!j) return running;
        size_t id = 0;
        if (sd_job_begin(j, s->batch, &id)) {
            slot_done(s); /* finished at once (refused or aborted) */
        } else {
            s->job[id] = j;
            running++;
        }
    }
}

/* One step of every running job; the ended ones leave. */
static size_t step(sd_slots *s, size_t running) {
    int32_t rc = smdiff_batch_step(s->batch, NULL);
    if (!rc) sd_metrics_batch_step(s->metrics, running);
    if (rc) SD_LOGE("slots: a batch step failed: %s", smdiff_batch_last_error(s->batch));
    for (size_t id = 0; id < s->n_slots; id++) {
        if (!s->job[id] || !sd_job_poll(s->job[id], s->batch, id, rc)) continue;
        s->job[id] = NULL;
        running--;
        slot_done(s);
    }
    return running;
}

static void worker(void *arg) {
    sd_slots *s = arg;
    size_t running = 0;
    for (;;) {
        uv_mutex_lock(&s->mu);
        while (!running && !s->head && !s->quit) uv_cond_wait(&s->cv, &s->mu);
        int done = !running && !s->head; /* quitting, and the queue is empty */
        uv_mutex_unlock(&s->mu);
        if (done) break;
        running = admit(s, running);
        if (running) running = step(s, running);
    }
}

sd_slots *sd_slots_create(size_t n_slots, smdiff_model *model, sd_metrics *metrics) {
    sd_slots *s = sd_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_slots = n_slots;
    s->metrics = metrics;
    s->job = sd_calloc(n_slots, sizeof *s->job);
    int ok = s->job && !smdiff_batch_create(model, &s->batch) &&
             !smdiff_batch_set_int(s->batch, SMDIFF_BATCH_CAPACITY, (int64_t)n_slots);
    if (!ok || uv_mutex_init(&s->mu)) {
        smdiff_batch_free(s->batch);
        sd_free(s->job);
        sd_free(s);
        return NULL;
    }
    if (uv_cond_init(&s->cv)) {
        uv_mutex_destroy(&s->mu);
        smdiff_batch_free(s->batch);
        sd_free(s->job);
        sd_free(s);
        return NULL;
    }
    s->started = !uv_thread_create(&s->thread, worker, s);
    if (!s->started) {
        sd_slots_free(s);
        return NULL;
    }
    return s;
}

void sd_slots_free(sd_slots *s) {
    if (!s) return;
    uv_mutex_lock(&s->mu);
    s->quit = 1;
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
    if (s->started) uv_thread_join(&s->thread);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    smdiff_batch_free(s->batch);
    sd_free(s->job);
    sd_free(s);
}

int sd_slots_submit(sd_slots *s, sd_job *j) {
    uv_mutex_lock(&s->mu);
    int ok = !s->quit;
    if (ok) {
        j->next = NULL;
        if (s->tail) s->tail->next = j;
        else s->head = j;
        s->tail = j;
        s->waiting++;
        uv_cond_signal(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

int sd_slots_cancel(sd_slots *s, sd_job *j) {
    uv_mutex_lock(&s->mu);
    sd_job **p = &s->head, *prev = NULL;
    while (*p && *p != j) {
        prev = *p;
        p = &(*p)->next;
    }
    int found = *p == j;
    if (found) {
        *p = j->next;
        if (s->tail == j) s->tail = prev;
        j->next = NULL;
        s->waiting--;
    }
    uv_mutex_unlock(&s->mu);
    return found;
}

sd_job *sd_slots_take_waiting(sd_slots *s) {
    uv_mutex_lock(&s->mu);
    sd_job *list = s->head;
    s->head = s->tail = NULL;
    s->waiting = 0;
    uv_mutex_unlock(&s->mu);
    return list;
}

void sd_slots_counts(sd_slots *s, size_t *busy, size_t *waiting) {
    uv_mutex_lock(&s->mu);
    *busy = s->busy;
    *waiting = s->waiting;
    uv_mutex_unlock(&s->mu);
}
