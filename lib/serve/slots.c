/* slots.c -- generation slots: one worker thread per slot, taking jobs
 * from one FIFO queue. Admission (slots + queue capacity, else 429) is the
 * router's, counted on the loop thread from submission until the finished
 * response is delivered, so a client that has its answer always finds its
 * slot free again. Jobs never wait on the event loop and the loop never
 * waits on a job: the queue's lock is held only to link and unlink. */
#include "core/alloc.h"
#include "serve.h"

struct sd_slots {
    uv_mutex_t mu;
    uv_cond_t cv;
    sd_job *head, *tail;
    size_t waiting, busy;
    int quit;
    uv_thread_t *threads;
    size_t n_threads;
};

static void worker(void *arg) {
    sd_slots *s = arg;
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->quit) uv_cond_wait(&s->cv, &s->mu);
        if (!s->head) break;
        sd_job *j = s->head;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        j->next = NULL;
        s->waiting--;
        s->busy++;
        uv_mutex_unlock(&s->mu);
        sd_job_run(j); /* the job belongs to the loop again once finished */
        uv_mutex_lock(&s->mu);
        s->busy--;
    }
    uv_mutex_unlock(&s->mu);
}

sd_slots *sd_slots_create(size_t n_slots) {
    sd_slots *s = sd_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->threads = sd_calloc(n_slots, sizeof *s->threads);
    if (!s->threads || uv_mutex_init(&s->mu)) {
        sd_free(s->threads);
        sd_free(s);
        return NULL;
    }
    if (uv_cond_init(&s->cv)) {
        uv_mutex_destroy(&s->mu);
        sd_free(s->threads);
        sd_free(s);
        return NULL;
    }
    for (; s->n_threads < n_slots; s->n_threads++)
        if (uv_thread_create(&s->threads[s->n_threads], worker, s)) {
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
    for (size_t i = 0; i < s->n_threads; i++) uv_thread_join(&s->threads[i]);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    sd_free(s->threads);
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
