/* test_faults.c -- the library's fault-injection suite (docs/RELIABILITY.md):
 *
 *  - write failures (EIO, ENOSPC, EDQUOT) at every operation of every
 *    atomic write -- the checkpoint (model and training state), conversion,
 *    tokenizer export, tokenizer training and a tokenized corpus -- through
 *    io/file.h's fault hook: each ends in SMDIFF_E_IO naming the reason,
 *    every destination holds its previous contents or the complete new ones
 *    (only after the rename, when syncing the folder fails), no temporary
 *    file is left;
 *  - a kill (SIGKILL in a forked child) before every operation of a
 *    checkpoint: the files are the old ones or the complete new ones, the
 *    temporary file left behind is removed by the next save, and the run
 *    resumes;
 *  - a flipped byte in every region of a training state and of a model
 *    checkpoint (every byte of the header, metadata, tensor infos and
 *    padding; the first, middle and last byte of every tensor) and
 *    truncations: refused with SMDIFF_E_FORMAT, the trainer unchanged;
 *  - special files (FIFO, folder, socket, character device) as every path
 *    argument of every function that opens a file, as input and as output:
 *    refused at once with SMDIFF_E_IO (an alarm fails the test if anything
 *    blocks), outputs never replaced;
 *  - temporary files of interrupted writes: removed when their process is
 *    gone, kept while it runs.
 * Each group prints how many faults it injected; all must end as stated. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/file.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

enum { V = 64, NTOK = 4000, SEQ = 16 };
static int32_t tokens[NTOK];
static char dir[256];

/* dir/name in one of 64 rotating buffers (enough for any one test). */
static char *tpath(const char *name) {
    static char buf[64][512];
    static int k;
    char *p = buf[k++ % 64];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Temporary files (".NAME.smdiff-tmp.*") in dir. */
static int count_temps(void) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".smdiff-tmp.")) n++;
    closedir(d);
    return n;
}

static void remove_temps(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".smdiff-tmp.")) unlink(tpath(e->d_name));
    if (d) closedir(d);
}

/* A small llada trainer after one step (threads 1: deterministic). */
static smdiff_trainer *make_trainer(void) {
    smdiff_trainer *t = NULL;
    assert_int_equal(smdiff_trainer_create(&t), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_SEQ_LEN, SEQ), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_BATCH, 2), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_int(t, SMDIFF_TRAIN_THREADS, 1), SMDIFF_OK);
    assert_int_equal(test_trainer_shape(t, V, 16, 1, 2, 2, 32, V - 1, 0), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_init_new(t, "llada"), SMDIFF_OK);
    assert_int_equal(smdiff_trainer_set_data(t, tokens, NTOK - 500, tokens + NTOK - 500, 500), SMDIFF_OK);
    double loss;
    assert_int_equal(smdiff_trainer_step(t, &loss), SMDIFF_OK);
    return t;
}

/* ------------------------------------------------------------- the writers */

/* A job writes its outputs; outs[] are their paths (NULL-terminated). */
typedef struct job {
    const char *name;
    int32_t (*run)(struct job *j);
    const char *outs[3];
    void *ud;
} job;

static int32_t run_checkpoint(job *j) { return smdiff_trainer_save(j->ud, j->outs[0], 0, j->outs[1]); }

static int32_t run_convert(job *j) {
    return smdiff_convert_hf(test_data_path("hf_dream_tiny"), j->outs[0], "f16", NULL, NULL, NULL, NULL);
}

static int32_t run_tok_export(job *j) { return smdiff_model_save_tokenizer(j->ud, j->outs[0]); }

static int32_t run_tok_train(job *j) {
    const char *paths[1] = {j->ud};
    const char *specials[2] = {"<|endoftext|>", "<|mask|>"};
    return smdiff_tokenizer_train(paths, 1, 300, "gpt2", specials, 2, j->outs[0], NULL, NULL);
}

static int32_t run_tok_corpus(job *j) {
    const char *paths[1] = {test_data_path("bpe_train/corpus")};
    return smdiff_train_tokenize_corpus(j->ud, paths, 1, 1, j->outs[0], NULL, NULL);
}

static int32_t run_write_file(job *j) {
    static const char text[] = "a file a program writes through smdiff_write_file\n";
    return smdiff_write_file(j->outs[0], text, sizeof text - 1);
}

/* The corpus tokenizer training reads: a few kilobytes of prose. */
static const char *small_corpus(void) {
    const char *p = tpath("corpus.txt");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 60; i++)
        fprintf(f, "The quick brown fox %d jumps over the lazy dog; the dog sleeps, the fox runs.\n", i % 7);
    fclose(f);
    return p;
}

/* A model holding only a byte-level BPE tokenizer trained on small_corpus. */
static smdiff_model *tokenizer_model(void) {
    const char *paths[1] = {small_corpus()}, *specials[2] = {"<|endoftext|>", "<|mask|>"};
    const char *tok = tpath("setup_tok.gguf");
    assert_int_equal(smdiff_tokenizer_train(paths, 1, 300, "gpt2", specials, 2, tok, NULL, NULL), SMDIFF_OK);
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(m, tok), SMDIFF_OK);
    unlink(tok);
    return m;
}

/* ------------------------------------------------------------ the fault hook */

typedef struct {
    int count;       /* operations seen */
    int fail_at;     /* operation to fail (0-based), -1 none */
    int err_no;      /* the errno it fails with */
    int kill;        /* instead: die by SIGKILL there */
    sd_io_op op;     /* what the failed operation was */
} hook;

static int on_io(sd_io_op op, const char *path, void *user) {
    (void)path;
    hook *h = user;
    int k = h->count++;
    if (k != h->fail_at) return 0;
    h->op = op;
    if (h->kill) raise(SIGKILL);
    return h->err_no;
}

static int same_file(const char *path, const void *data, size_t n) {
    size_t m;
    void *got = test_read_file(path, &m);
    int same = got && m == n && memcmp(got, data, n) == 0;
    free(got);
    return same;
}

typedef struct {
    char *data[3];
    size_t n[3];
} snapshot;

static void snap(const job *j, snapshot *s) {
    for (int i = 0; j->outs[i]; i++) {
        s->data[i] = test_read_file(j->outs[i], &s->n[i]);
        assert_non_null(s->data[i]);
    }
}

static void snap_free(snapshot *s) {
    for (int i = 0; i < 3; i++) free(s->data[i]);
}

static long n_write_faults, n_kills, n_corrupt, n_special;

/* Fail each operation of j in turn with EIO, ENOSPC and EDQUOT. */
static void write_faults(job *j) {
    hook h = {0, -1, 0, 0, 0};
    sd_io_set_fault_hook(on_io, &h);
    int32_t rc = j->run(j);
    if (rc) fail_msg("%s: %s", j->name, smdiff_last_error());
    int n_ops = h.count;
    assert_true(n_ops >= 5); /* create, write, fsync, close, rename, ... */
    snapshot good = {0}, old = {0};
    snap(j, &good);
    static const char OLD[] = "previous contents";
    for (int i = 0; j->outs[i]; i++) write_bytes(j->outs[i], OLD, sizeof OLD);
    snap(j, &old);
    static const int errs[3] = {EIO, ENOSPC, EDQUOT};
    for (int k = 0; k < n_ops; k++)
        for (int e = 0; e < 3; e++) {
            h = (hook){0, k, errs[e], 0, 0};
            rc = j->run(j);
            assert_true(h.count > k);
            if (rc != SMDIFF_E_IO)
                fail_msg("%s: operation %d failing with %s gave %s: %s", j->name, k, strerror(errs[e]),
                         smdiff_err_name(rc), smdiff_last_error());
            if (!strstr(smdiff_last_error(), strerror(errs[e])))
                fail_msg("%s: the message does not give the reason: %s", j->name, smdiff_last_error());
            int n_new = 0;
            for (int i = 0; j->outs[i]; i++) {
                int is_old = same_file(j->outs[i], old.data[i], old.n[i]);
                int is_new = same_file(j->outs[i], good.data[i], good.n[i]);
                if (!is_old && !is_new) fail_msg("%s: %s is neither old nor new after fault %d", j->name, j->outs[i], k);
                n_new += is_new;
            }
            /* the file that failed keeps its old contents, unless only the
             * folder's sync failed after the rename */
            int all_new = !j->outs[1] ? n_new == 1 : n_new == (j->outs[2] ? 3 : 2);
            if (all_new && h.op != SD_IO_DIRSYNC) fail_msg("%s: every file is new after fault %d", j->name, k);
            if (count_temps()) fail_msg("%s: a temporary file is left after fault %d", j->name, k);
            for (int i = 0; j->outs[i]; i++) write_bytes(j->outs[i], OLD, sizeof OLD);
            n_write_faults++;
        }
    sd_io_set_fault_hook(NULL, NULL);
    snap_free(&good);
    snap_free(&old);
    for (int i = 0; j->outs[i]; i++) unlink(j->outs[i]);
    printf("  %s: %d operations x 3 errors, each SMDIFF_E_IO with the reason, nothing half-written\n", j->name, n_ops);
}

static void test_write_faults(void **state) {
    (void)state;
    smdiff_trainer *t = make_trainer();
    smdiff_model *m = tokenizer_model();
    job jobs[] = {
        {"checkpoint", run_checkpoint, {tpath("ck.gguf"), tpath("ck.gguf.state"), NULL}, t},
        {"convert", run_convert, {tpath("conv.gguf"), NULL, NULL}, NULL},
        {"tokenizer export", run_tok_export, {tpath("tok.gguf"), NULL, NULL}, m},
        {"tokenizer training", run_tok_train, {tpath("bpe.gguf"), NULL, NULL}, (void *)small_corpus()},
        {"tokenized corpus", run_tok_corpus, {tpath("corpus.i32"), NULL, NULL}, m},
        {"smdiff_write_file", run_write_file, {tpath("plain.txt"), NULL, NULL}, NULL},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) write_faults(&jobs[i]);
    printf("  write faults: %ld injected, %ld refused cleanly\n", n_write_faults, n_write_faults);
    assert_int_equal(smdiff_write_file(NULL, "x", 1), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_write_file(tpath("plain.txt"), NULL, 1), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_write_file(tpath("empty.txt"), NULL, 0), SMDIFF_OK); /* an empty file */
    size_t n = 1;
    free(test_read_file(tpath("empty.txt"), &n));
    assert_int_equal(n, 0);
    unlink(tpath("empty.txt"));
    unlink(tpath("plain.txt"));
    unlink(tpath("corpus.txt"));
    smdiff_model_free(m);
    smdiff_trainer_free(t);
}

/* -------------------------------------------------------------------- kills */

static void test_kill_checkpoint(void **state) {
    (void)state;
    smdiff_trainer *t = make_trainer();
    const char *model = tpath("kill.gguf"), *st = tpath("kill.gguf.state");
    job j = {"checkpoint", run_checkpoint, {model, st, NULL}, t};
    /* an earlier checkpoint (one step back) and the new one */
    assert_int_equal(j.run(&j), SMDIFF_OK);
    snapshot old = {0}, good = {0};
    snap(&j, &old);
    double loss;
    assert_int_equal(smdiff_trainer_step(t, &loss), SMDIFF_OK);
    hook h = {0, -1, 0, 0, 0};
    sd_io_set_fault_hook(on_io, &h);
    assert_int_equal(j.run(&j), SMDIFF_OK);
    int n_ops = h.count;
    snap(&j, &good);
    for (int k = 0; k < n_ops; k++) {
        write_bytes(model, old.data[0], old.n[0]);
        write_bytes(st, old.data[1], old.n[1]);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            h = (hook){0, k, 0, 1, 0};
            j.run(&j);
            _exit(3); /* not killed: the test fails below */
        }
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) fail_msg("the child was not killed at operation %d", k);
        for (int i = 0; i < 2; i++)
            if (!same_file(j.outs[i], old.data[i], old.n[i]) && !same_file(j.outs[i], good.data[i], good.n[i]))
                fail_msg("%s is neither old nor new after a kill at operation %d", j.outs[i], k);
        /* whatever is on disk resumes */
        smdiff_trainer *r = make_trainer();
        int32_t rc = smdiff_trainer_resume(r, st);
        if (rc) fail_msg("resume after a kill at operation %d: %s", k, smdiff_trainer_last_error(r));
        smdiff_trainer_free(r);
        /* the next save removes what the killed one left */
        h = (hook){0, -1, 0, 0, 0};
        assert_int_equal(j.run(&j), SMDIFF_OK);
        assert_int_equal(count_temps(), 0);
        assert_true(same_file(model, good.data[0], good.n[0]) && same_file(st, good.data[1], good.n[1]));
        n_kills++;
    }
    sd_io_set_fault_hook(NULL, NULL);
    printf("  kills: before each of the %d operations of a checkpoint; old or new files, resumable, "
           "temporary files removed by the next save\n", n_ops);
    snap_free(&old);
    snap_free(&good);
    unlink(model), unlink(st);
    smdiff_trainer_free(t);
}

/* -------------------------------------------------------------- corruption */

/* Offsets to flip in a GGUF file: every byte before the tensor data, and
 * the first, middle and last byte of each tensor and of each gap. */
static size_t flip_offsets(const char *path, size_t **out) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    if (sd_gguf_open(path, 1, &g, &err)) fail_msg("%s", err.msg);
    size_t section = (size_t)sd_gguf_data_offset(g), n = 0, cap = section + 8 * (size_t)sd_gguf_n_tensors(g) + 8;
    size_t *o = malloc(cap * sizeof *o);
    assert_non_null(o);
    for (size_t b = 0; b < section; b++) o[n++] = b;
    size_t prev_end = section;
    for (int64_t i = 0; i < sd_gguf_n_tensors(g); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        size_t s = section + (size_t)t->offset, e = s + (size_t)t->n_bytes;
        size_t pick[6] = {s, s + (size_t)t->n_bytes / 2, e - 1, prev_end, prev_end + (s - prev_end) / 2, s - 1};
        for (int k = 0; k < (s > prev_end ? 6 : 3); k++) o[n++] = pick[k];
        prev_end = e;
    }
    sd_gguf_close(g);
    *out = o;
    return n;
}

static void test_corrupt_state(void **state) {
    (void)state;
    smdiff_trainer *t = make_trainer();
    const char *model = tpath("c.gguf"), *st = tpath("c.gguf.state"), *bad = tpath("bad.state");
    assert_int_equal(smdiff_trainer_save(t, model, 0, st), SMDIFF_OK);
    smdiff_trainer *r = make_trainer();
    int64_t steps_before;
    assert_int_equal(smdiff_trainer_steps(r, &steps_before), SMDIFF_OK);
    size_t n_file;
    uint8_t *file = test_read_file(st, &n_file);
    size_t *offs;
    size_t n = flip_offsets(st, &offs);
    long refused = 0;
    for (size_t i = 0; i < n; i++) {
        file[offs[i]] ^= 0x20;
        write_bytes(bad, file, n_file);
        file[offs[i]] ^= 0x20;
        int32_t rc = smdiff_trainer_resume(r, bad);
        if (rc == SMDIFF_OK) fail_msg("a state with byte %zu flipped was resumed", offs[i]);
        if (rc != SMDIFF_E_FORMAT) fail_msg("byte %zu: %s: %s", offs[i], smdiff_err_name(rc), smdiff_trainer_last_error(r));
        refused++;
    }
    for (size_t cut = 0; cut < n_file; cut += n_file / 37 + 1) {
        write_bytes(bad, file, cut);
        int32_t rc = smdiff_trainer_resume(r, bad);
        if (rc != SMDIFF_E_FORMAT) fail_msg("state cut at %zu: %s", cut, smdiff_err_name(rc));
        refused++;
    }
    int64_t steps;
    assert_int_equal(smdiff_trainer_steps(r, &steps), SMDIFF_OK);
    assert_int_equal(steps, steps_before); /* nothing loaded */
    /* the intact file still resumes */
    assert_int_equal(smdiff_trainer_resume(r, st), SMDIFF_OK);
    free(offs);
    free(file);
    printf("  training state: %ld corruptions (%zu flipped bytes in every region, truncations) refused\n", refused, n);
    n_corrupt += refused;

    /* the model checkpoint: flipped bytes are refused by the loader */
    file = test_read_file(model, &n_file);
    n = flip_offsets(model, &offs);
    refused = 0;
    for (size_t i = 0; i < n; i += 3) {
        file[offs[i]] ^= 0x01;
        write_bytes(bad, file, n_file);
        file[offs[i]] ^= 0x01;
        smdiff_model *m = NULL;
        assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
        int32_t rc = smdiff_model_load_file(m, bad);
        smdiff_model_free(m);
        if (rc != SMDIFF_E_FORMAT) fail_msg("model with byte %zu flipped: %s", offs[i], smdiff_err_name(rc));
        refused++;
    }
    free(offs);
    printf("  model checkpoint: %ld flipped bytes refused by the loader\n", refused);
    n_corrupt += refused;
    /* a state without a checksum: refused unless forced */
    {
        sd_gguf *g = NULL;
        sd_error err = {0};
        assert_int_equal(sd_gguf_open(st, 1, &g, &err), SMDIFF_OK);
        int64_t ki = sd_gguf_find_key(g, SD_GGUF_CHECKSUM_KEY);
        assert_true(ki >= 0);
        sd_gguf_close(g);
        free(file);
        file = test_read_file(st, &n_file);
        /* a byte of either key's name changed: the other one still says
         * there is a checksum */
        const char *keys[2] = {SD_GGUF_CHECKSUM_ALGO_KEY "\x08", SD_GGUF_CHECKSUM_KEY "\x0a"};
        for (int i = 0; i < 2; i++) {
            char *k = memmem(file, n_file, keys[i], strlen(keys[i]) + 1);
            assert_non_null(k);
            k[strlen(keys[i]) - 2] ^= 0x01;
            write_bytes(bad, file, n_file);
            k[strlen(keys[i]) - 2] ^= 0x01;
            assert_int_equal(smdiff_trainer_resume(r, bad), SMDIFF_E_FORMAT);
            assert_non_null(strstr(smdiff_trainer_last_error(r), "without"));
            n_corrupt++;
        }
    }
    free(file);
    unlink(bad), unlink(model), unlink(st);
    smdiff_trainer_free(r);
    smdiff_trainer_free(t);
}

/* A resume with other hyper-parameters names them; resume_force lets it go on. */
static void test_resume_other_options(void **state) {
    (void)state;
    smdiff_trainer *t = make_trainer();
    const char *model = tpath("h.gguf"), *st = tpath("h.gguf.state");
    assert_int_equal(smdiff_trainer_save(t, model, 0, st), SMDIFF_OK);
    smdiff_trainer_free(t);
    for (int force = 0; force < 2; force++) {
        smdiff_trainer *r = NULL;
        assert_int_equal(smdiff_trainer_create(&r), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_set_int(r, SMDIFF_TRAIN_SEQ_LEN, SEQ), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_set_int(r, SMDIFF_TRAIN_BATCH, 2), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_set_int(r, SMDIFF_TRAIN_THREADS, 2), SMDIFF_OK); /* not compared */
        assert_int_equal(smdiff_trainer_set_double(r, SMDIFF_TRAIN_LR, 1e-3), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_set_int(r, SMDIFF_TRAIN_SEED, 7), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_set_int(r, SMDIFF_TRAIN_RESUME_FORCE, force), SMDIFF_OK);
        assert_int_equal(test_trainer_shape(r, V, 16, 1, 2, 2, 32, V - 1, 0), SMDIFF_OK);
        assert_int_equal(smdiff_trainer_init_new(r, "llada"), SMDIFF_OK);
        int32_t rc = smdiff_trainer_resume(r, st);
        int64_t steps;
        assert_int_equal(smdiff_trainer_steps(r, &steps), SMDIFF_OK);
        if (!force) {
            assert_int_equal(rc, SMDIFF_E_INVAL);
            const char *msg = smdiff_trainer_last_error(r);
            printf("  %s\n", msg);
            assert_non_null(strstr(msg, "lr 0.001"));
            assert_non_null(strstr(msg, "seed 7 (the state has 1)"));
            assert_null(strstr(msg, "threads"));
            assert_int_equal(steps, 0);
        } else {
            assert_int_equal(rc, SMDIFF_OK);
            assert_int_equal(steps, 1);
        }
        smdiff_trainer_free(r);
    }
    unlink(model), unlink(st);
}

/* ----------------------------------------------------------- special files */

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) {
    (void)sig;
    alarmed = 1;
}

/* SIGALRM interrupts a blocked open or read (no SA_RESTART): a call that
 * blocks on a special file returns, and expect_refused fails the test. */
static void arm_alarm_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
}

typedef struct {
    const char *what, *path;
} special;

/* A FIFO, a folder, a socket and a link to a character device in dir. */
static int make_specials(special s[4]) {
    const char *fifo = tpath("sp.fifo"), *fold = tpath("sp.dir"), *sock = tpath("sp.sock"), *dev = tpath("sp.dev");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(mkdir(fold, 0755), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    assert_int_equal(symlink("/dev/null", dev), 0);
    s[0] = (special){"FIFO", strdup(fifo)};
    s[1] = (special){"folder", strdup(fold)};
    s[2] = (special){"socket", strdup(sock)};
    s[3] = (special){"character device", strdup(dev)};
    return 4;
}

static void free_specials(special s[4]) {
    unlink(s[0].path), rmdir(s[1].path), unlink(s[2].path), unlink(s[3].path);
    for (int i = 0; i < 4; i++) free((char *)s[i].path);
}

static mode_t kind_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & S_IFMT;
}

/* rc must be the refusal expected, at once (the alarm would fire otherwise). */
static void expect_refused(int32_t rc, int32_t want, const special *s, const char *call) {
    if (alarmed) fail_msg("%s blocked on a %s", call, s->what);
    if (rc != want)
        fail_msg("%s on a %s: %s, not %s: %s", call, s->what, smdiff_err_name(rc), smdiff_err_name(want),
                 smdiff_last_error());
    n_special++;
}

static void test_special_inputs(void **state) {
    (void)state;
    special s[4];
    make_specials(s);
    arm_alarm_handler();
    smdiff_trainer *t = make_trainer();
    for (int i = 0; i < 4; i++) {
        alarmed = 0;
        alarm(10);
        smdiff_model *m = NULL;
        assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
        expect_refused(smdiff_model_load_file(m, s[i].path), SMDIFF_E_IO, &s[i], "smdiff_model_load_file");
        if (i != 1) /* a folder is a Hugging Face tokenizer folder */
            expect_refused(smdiff_model_load_tokenizer(m, s[i].path), SMDIFF_E_IO, &s[i], "smdiff_model_load_tokenizer");
        smdiff_model_free(m);
        smdiff_trainer *n = NULL;
        assert_int_equal(smdiff_trainer_create(&n), SMDIFF_OK);
        expect_refused(smdiff_trainer_init_from_file(n, s[i].path), SMDIFF_E_IO, &s[i], "smdiff_trainer_init_from_file");
        smdiff_trainer_free(n);
        expect_refused(smdiff_trainer_set_tokenizer_file(t, s[i].path), SMDIFF_E_IO, &s[i],
                       "smdiff_trainer_set_tokenizer_file");
        expect_refused(smdiff_trainer_resume(t, s[i].path), SMDIFF_E_IO, &s[i], "smdiff_trainer_resume");
        if (i != 1) { /* a folder is a corpus */
            const char *paths[1] = {s[i].path};
            expect_refused(smdiff_tokenizer_train(paths, 1, 300, "gpt2", NULL, 0, tpath("never.gguf"), NULL, NULL),
                           SMDIFF_E_IO, &s[i], "smdiff_tokenizer_train");
        }
        alarm(0);
        assert_int_equal(access(tpath("never.gguf"), F_OK), -1);
    }
    /* each file of a Hugging Face folder, replaced by a FIFO in turn */
    static const char *const files[] = {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json"};
    char cmd[1200];
    const char *hf = tpath("hf");
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm %s/%s && mkfifo %s/%s", hf,
                 test_data_path("hf_dream_tiny"), hf, hf, files[f], hf, files[f]);
        assert_int_equal(system(cmd), 0);
        special fs = {"FIFO", files[f]};
        alarmed = 0;
        alarm(10);
        int32_t rc = smdiff_convert_hf(hf, tpath("never.gguf"), NULL, NULL, NULL, NULL, NULL);
        expect_refused(rc, SMDIFF_E_IO, &fs, "smdiff_convert_hf");
        if (!strstr(smdiff_last_error(), files[f])) fail_msg("the message does not name %s: %s", files[f], smdiff_last_error());
        /* the tokenizer reads all but the weights */
        if (!strstr(files[f], "safetensors")) {
            smdiff_model *m = NULL;
            assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
            expect_refused(smdiff_model_load_tokenizer(m, hf), SMDIFF_E_IO, &fs, "smdiff_model_load_tokenizer (folder)");
            smdiff_model_free(m);
        }
        alarm(0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", hf);
    assert_int_equal(system(cmd), 0);
    smdiff_trainer_free(t);
    free_specials(s);
    printf("  special inputs: %ld refusals, none blocked\n", n_special);
}

static void test_special_outputs(void **state) {
    (void)state;
    special s[4];
    make_specials(s);
    arm_alarm_handler();
    smdiff_trainer *t = make_trainer();
    smdiff_model *m = tokenizer_model();
    const char *corpus = small_corpus();
    long before = n_special;
    for (int i = 0; i < 4; i++) {
        mode_t kind = kind_of(s[i].path);
        alarmed = 0;
        alarm(10);
        const char *p = s[i].path, *paths[1] = {corpus};
        expect_refused(smdiff_trainer_save(t, p, 0, NULL), SMDIFF_E_IO, &s[i], "smdiff_trainer_save (model)");
        expect_refused(smdiff_trainer_save(t, tpath("ok.gguf"), 0, p), SMDIFF_E_IO, &s[i], "smdiff_trainer_save (state)");
        expect_refused(smdiff_convert_hf(test_data_path("hf_dream_tiny"), p, NULL, NULL, NULL, NULL, NULL), SMDIFF_E_IO,
                       &s[i], "smdiff_convert_hf (output)");
        expect_refused(smdiff_model_save_tokenizer(m, p), SMDIFF_E_IO, &s[i], "smdiff_model_save_tokenizer");
        expect_refused(smdiff_tokenizer_train(paths, 1, 300, "gpt2", NULL, 0, p, NULL, NULL), SMDIFF_E_IO, &s[i],
                       "smdiff_tokenizer_train (output)");
        expect_refused(smdiff_train_tokenize_corpus(m, paths, 1, 1, p, NULL, NULL), SMDIFF_E_IO, &s[i],
                       "smdiff_train_tokenize_corpus (output)");
        expect_refused(smdiff_write_file(p, "x", 1), SMDIFF_E_IO, &s[i], "smdiff_write_file");
        alarm(0);
        if (!strstr(smdiff_last_error(), "refusing to replace")) fail_msg("%s", smdiff_last_error());
        assert_int_equal(kind_of(p), kind); /* still what it was */
        assert_int_equal(count_temps(), 0);
    }
    /* /dev/null itself is still a device */
    assert_int_equal(kind_of("/dev/null"), S_IFCHR);
    /* a link to a regular file: the link stays, its target is replaced */
    write_bytes(tpath("target.gguf"), "x", 1);
    assert_int_equal(symlink(tpath("target.gguf"), tpath("link.gguf")), 0);
    assert_int_equal(smdiff_model_save_tokenizer(m, tpath("link.gguf")), SMDIFF_OK);
    struct stat ls;
    assert_int_equal(lstat(tpath("link.gguf"), &ls), 0);
    assert_true(S_ISLNK(ls.st_mode));
    smdiff_model *m2 = NULL;
    assert_int_equal(smdiff_model_create(&m2), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(m2, tpath("target.gguf")), SMDIFF_OK);
    smdiff_model_free(m2);
    unlink(tpath("link.gguf")), unlink(tpath("target.gguf")), unlink(tpath("ok.gguf")), unlink(corpus);
    smdiff_model_free(m);
    smdiff_trainer_free(t);
    free_specials(s);
    printf("  special outputs: %ld refusals, nothing replaced\n", n_special - before);
}

/* Temporaries of an interrupted write are found by name and removed when
 * their process is gone; a running writer's are kept. */
static void test_stale_temporaries(void **state) {
    (void)state;
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    assert_int_equal(waitpid(gone, NULL, 0), gone);
    char dead[600], live[600];
    snprintf(dead, sizeof dead, "%s/.tok.gguf.smdiff-tmp.%d.0", dir, (int)gone);
    snprintf(live, sizeof live, "%s/.tok.gguf.smdiff-tmp.%d.0", dir, (int)getppid());
    write_bytes(dead, "half", 4);
    write_bytes(live, "half", 4);
    write_bytes(tpath(".other.gguf.smdiff-tmp.1.0"), "x", 1); /* another destination's */
    smdiff_model *m = tokenizer_model();
    assert_int_equal(smdiff_model_save_tokenizer(m, tpath("tok.gguf")), SMDIFF_OK);
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(tpath(".other.gguf.smdiff-tmp.1.0"), F_OK), 0);
    smdiff_model_free(m);
    remove_temps();
    unlink(tpath("tok.gguf"));
}

int main(void) {
    for (int i = 0, d = 0; i < NTOK; d++)
        for (int k = 0; k < 6 + d % 9 && i < NTOK; k++) tokens[i++] = k == 0 ? 0 : 1 + (d * 7 + k * 3) % (V - 2);
    char *d = test_scratch_dir("test_faults");
    if (!d) return 1;
    snprintf(dir, sizeof dir, "%s", d);
    free(d);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_faults),
        cmocka_unit_test(test_kill_checkpoint),
        cmocka_unit_test(test_corrupt_state),
        cmocka_unit_test(test_resume_other_options),
        cmocka_unit_test(test_special_inputs),
        cmocka_unit_test(test_special_outputs),
        cmocka_unit_test(test_stale_temporaries),
    };
    int rc = cmocka_run_group_tests_name("faults", tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = 1;
    return rc;
}
