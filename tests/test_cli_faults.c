/* test_cli_faults.c -- the smdiff command under faults, as
 * docs/RELIABILITY.md promises (the library's own fault suite is
 * test_faults.c, its allocation failures test_alloc.c):
 *  - special files -- a FIFO, a character device, a folder -- as every path
 *    argument of every command: refused at once (a deadline fails a command
 *    that blocks) with status 1 or 2 and a message naming what the path is;
 *    an output path never replaced;
 *  - a write-side system call (write, pwrite, fsync, rename) failing with
 *    EIO or ENOSPC at each such call of train, convert, tokenizer train,
 *    tokenizer corpus and tokenize --save, through the LD_PRELOAD shim
 *    tests/shim/faultshim.c:
 *    status 1 with the system's reason, every destination old or whole, no
 *    temporary file left;
 *  - a file-size limit (RLIMIT_FSIZE, EFBIG) at many sizes, which reaches
 *    the writes the shim cannot see (stdio's: standard output, CSVs, the
 *    training log): status 0 with every output whole, or 1 with the
 *    reason, nothing lost;
 *  - memory limits (RLIMIT_AS, as `ulimit -v`) from 16 MiB to 2 GiB for
 *    every command that loads or writes a model: each ends in bounded time,
 *    with status 0 and its output, or status 1 and SMDIFF_E_NOMEM;
 *  - train --resume with other hyper-parameters: refused naming them,
 *    --resume-force goes on.
 * Standard output on /dev/full and on a closed pipe is test_cli.c's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smdiff/smdiff.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define TINY "tests/data/tiny_llada_f32.gguf"
#define GPT2 "tests/data/tokenizers/gpt2"
#define HF "tests/data/hf_tiny_dream"
#define TEXT "tests/data/corpus/alice.txt"
#define DEADLINE_S 60 /* generous: sanitizers, a busy machine; a hang is for ever */

static char *dir;
static char tok[512], tasks[512], fifo[512], folder[512], tokenizer[512], talker[512];

/* dir/name, in one of 32 buffers (enough for every path one test names). */
static char *at(const char *name) {
    static char p[32][600];
    static int k;
    k = (k + 1) % 32;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* ---------------------------------------------------------- the runner */

typedef struct run_cfg {
    const char *env[4];   /* "NAME=value" added */
    uint64_t limit_bytes; /* RLIMIT_AS, 0 for none */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE, 0 for none (SIGXFSZ ignored: a write fails with EFBIG) */
} run_cfg;

static struct {
    int status; /* exit status, 128 + signal, or -1 when it ran past the deadline (killed) */
    double seconds;
    char out[1 << 14], err[1 << 14];
} R;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void slurp(const char *path, char *buf, size_t cap) {
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run the CLI with args (NULL-terminated, without the program): standard
 * input /dev/null, standard output to a file, standard error to a pipe
 * (read when it ends: a message is short; a pipe knows no size limit); R
 * holds the result. */
static int run(const char *const *args, const run_cfg *c) {
    const char *cli = test_cli_path();
    const char *argv[64];
    size_t n = 0;
    argv[n++] = cli;
    while (*args) argv[n++] = *args++;
    argv[n] = NULL;
    char out_path[600];
    snprintf(out_path, sizeof out_path, "%s/run.out", dir);
    int err[2];
    assert_int_equal(pipe(err), 0);
    double t0 = now_s();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err[1], 2) < 0) _exit(99);
        close(err[0]);
        for (size_t i = 0; c && i < 4 && c->env[i]; i++) putenv((char *)c->env[i]);
        struct rlimit r;
        if (c && c->limit_bytes && (r = (struct rlimit){c->limit_bytes, c->limit_bytes}, setrlimit(RLIMIT_AS, &r)))
            _exit(98);
        if (c && c->fsize_bytes) {
            signal(SIGXFSZ, SIG_IGN);
            r = (struct rlimit){c->fsize_bytes, c->fsize_bytes};
            if (setrlimit(RLIMIT_FSIZE, &r)) _exit(98);
        }
        execv(cli, (char *const *)argv);
        _exit(97);
    }
    close(err[1]);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    size_t n_err = 0;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        assert_true(w >= 0);
        if (w == pid) {
            R.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (now_s() - t0 > DEADLINE_S) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            R.status = -1;
            break;
        }
        ssize_t got = read(err[0], R.err + n_err, sizeof R.err - 1 - n_err);
        if (got > 0) n_err += (size_t)got;
        else nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    for (ssize_t got; (got = read(err[0], R.err + n_err, sizeof R.err - 1 - n_err)) > 0;) n_err += (size_t)got;
    R.err[n_err] = '\0';
    close(err[0]);
    R.seconds = now_s() - t0;
    slurp(out_path, R.out, sizeof R.out);
    unlink(out_path);
    return R.status;
}

/* args with every "@" replaced by path. */
static void substitute(const char *const *args, const char *path, const char **argv) {
    size_t n = 0;
    for (; args[n]; n++) argv[n] = strcmp(args[n], "@") ? args[n] : path;
    argv[n] = NULL;
}

static void join(const char *const *argv, char *buf, size_t cap) {
    buf[0] = '\0';
    for (size_t i = 0; argv[i]; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", i ? " " : "", argv[i]);
    }
}

/* Temporary files of an atomic write left in dir. */
static int temporaries_left(void) {
    char cmd[700], out[256];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c 'smdiff-tmp'", dir);
    test_run(cmd, out, sizeof out);
    return atoi(out);
}

#define SKIP_WITHOUT_CLI() \
    if (!test_cli_path()) SKIP_BECAUSE("the smdiff CLI is not built (set BUILD to its folder)")

/* ------------------------------------------------------- special files */

typedef struct path_case {
    const char *args[32]; /* "@" marks the path argument under test */
    int output;           /* the argument is an output path */
    int folder_ok;        /* a folder is a valid kind for this argument (refused later, for its contents) */
} path_case;

/* A FIFO, a character device and a folder as this argument. */
static int check_path_case(const path_case *pc) {
    static const struct {
        const char *what;
        int is_output_kind;
    } kinds[] = {{"FIFO", 1}, {"character device", 0}, {"folder", 1}};
    const char *paths[] = {fifo, "/dev/zero", folder};
    int n = 0;
    for (size_t k = 0; k < 3; k++) {
        if (pc->output && !kinds[k].is_output_kind) continue; /* a device as output: not created here */
        const char *argv[40];
        char line[1024];
        substitute(pc->args, paths[k], argv);
        join(argv, line, sizeof line);
        int st = run(argv, NULL);
        if (st < 0) fail_msg("smdiff %s: still running after %d s (blocked on the %s?)", line, DEADLINE_S, kinds[k].what);
        if (st != 1 && st != 2) fail_msg("smdiff %s: status %d, want 1 or 2; said: %s", line, st, R.err);
        if (!(k == 2 && pc->folder_ok) && !strstr(R.err, kinds[k].what))
            fail_msg("smdiff %s: the message does not name the %s: %s", line, kinds[k].what, R.err);
        struct stat s;
        assert_int_equal(stat(fifo, &s), 0);
        assert_true(S_ISFIFO(s.st_mode)); /* never replaced */
        assert_int_equal(stat(folder, &s), 0);
        assert_true(S_ISDIR(s.st_mode));
        n++;
    }
    return n;
}

static void test_special_files(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    const char *out = at("out.gguf"), *out_i32 = at("out.i32");
    const path_case cases[] = {
        /* inputs */
        {{"info", "@", NULL}, 0, 0},
        {{"serve", "-m", "@", "--port", "0", NULL}, 0, 0},
        {{"generate", "-m", "@", "--ids", "1 2", NULL}, 0, 0},
        {{"generate", "-m", TINY, "-f", "@", NULL}, 0, 0},
        {{"tokenize", "@", "-p", "hi", NULL}, 0, 1},
        {{"tokenize", GPT2, "-f", "@", NULL}, 0, 0},
        {{"tokenizer", "train", "--vocab-size", "300", "-o", out, "@", NULL}, 0, 1},
        {{"tokenizer", "corpus", "-t", "@", "-o", out_i32, TEXT, NULL}, 0, 1},
        {{"tokenizer", "corpus", "-t", GPT2, "-o", out_i32, "@", NULL}, 0, 1},
        {{"convert", "@", out, NULL}, 0, 1},
        {{"train", "--tokens", "@", "--out", out, "--init", TINY, "--steps", "1", NULL}, 0, 0},
        {{"train", "--tokens", tok, "--out", out, "--init", "@", "--steps", "1", NULL}, 0, 0},
        {{"train", "--tokens", tok, "--out", out, "--init", TINY, "--tokenizer", "@", "--steps", "1", NULL}, 0, 1},
        {{"train", "--corpus", "@", "--tokens", out_i32, "--out", out, "--init", TINY, "--steps", "1", NULL}, 0, 1},
        {{"train", "--tokens", tok, "--out", out, "--init", TINY, "--iso-compute-of", "@", NULL}, 0, 0},
        {{"eval", "elbo", "-m", "@", "--tokens", tok, "--seq", "16", NULL}, 0, 0},
        {{"eval", "elbo", "-m", TINY, "--tokens", "@", "--seq", "16", NULL}, 0, 0},
        {{"eval", "gate", "-m", "@", "--tokens", tok, "--seq", "16", NULL}, 0, 0},
        {{"eval", "gate", "-m", TINY, "--tokens", "@", "--seq", "16", NULL}, 0, 0},
        {{"eval", "gonogo", "-m", "@", "--tokens", tok, "--seq", "16", NULL}, 0, 0},
        {{"eval", "gonogo", "-m", TINY, "--tokens", "@", "--seq", "16", NULL}, 0, 0},
        {{"eval", "samples", "-m", "@", "--ref", TINY, "--tokens", tok, "--len", "8", NULL}, 0, 0},
        {{"eval", "samples", "-m", TINY, "--ref", "@", "--tokens", tok, "--len", "8", NULL}, 0, 0},
        {{"eval", "samples", "-m", TINY, "--ref", TINY, "--tokens", "@", "--len", "8", NULL}, 0, 0},
        {{"eval", "infill", "-m", "@", "--tasks", tasks, "-o", at("fill.jsonl"), NULL}, 0, 0},
        {{"eval", "infill", "-m", TINY, "--tasks", "@", "-o", at("fill.jsonl"), NULL}, 0, 0},
        /* outputs */
        {{"tokenizer", "train", "--vocab-size", "300", "-o", "@", TEXT, NULL}, 1, 0},
        {{"tokenize", GPT2, "--save", "@", NULL}, 1, 0},
        {{"tokenizer", "corpus", "-t", GPT2, "-o", "@", TEXT, NULL}, 1, 0},
        {{"convert", HF, "@", NULL}, 1, 0},
        {{"train", "--tokens", tok, "--out", "@", "--init", TINY, "--steps", "1", "--batch", "1", "--seq", "16", NULL}, 1, 0},
        {{"train", "--corpus", TEXT, "--tokens", "@", "--out", out, "--arch", "llada", "--vocab", "300", "--embd", "32",
          "--layers", "1", "--heads", "2", "--ff", "64", "--mask-id", "299", "--eos-id", "298", "--tokenizer", tokenizer,
          NULL},
         1, 0},
        {{"eval", "elbo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", "--csv", "@", NULL}, 1, 0},
        {{"eval", "gonogo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", "--csv", "@", NULL}, 1, 0},
        {{"eval", "samples", "-m", TINY, "--ref", TINY, "--tokens", tok, "--len", "8", "--csv", "@", NULL}, 1, 0},
        {{"eval", "samples", "-m", TINY, "--ref", TINY, "--tokens", tok, "--len", "8", "--dump", "@", NULL}, 1, 0},
        {{"eval", "infill", "-m", talker, "--tasks", tasks, "-o", "@", NULL}, 1, 0},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) n += check_path_case(&cases[i]);
    /* the files train writes beside --out: the state, the log, the plot */
    static const char *const beside[] = {".state", ".csv", ".svg"};
    for (size_t i = 0; i < 3; i++) {
        char base[600], special[700];
        snprintf(base, sizeof base, "%s", at("beside.gguf"));
        for (size_t j = 0; j < 3; j++) { /* what the last run wrote */
            snprintf(special, sizeof special, "%s%s", base, beside[j]);
            unlink(special);
        }
        unlink(base);
        snprintf(special, sizeof special, "%s%s", base, beside[i]);
        assert_int_equal(mkfifo(special, 0600), 0);
        const char *argv[] = {"train", "--tokens", tok, "--out", base, "--init", TINY, "--steps", "1",
                              "--batch", "1", "--seq", "16", "-t", "1", NULL};
        int st = run(argv, NULL);
        if (st != 1 || !strstr(R.err, "FIFO"))
            fail_msg("smdiff train with a FIFO at %s: status %d, want 1 naming the FIFO; said: %s", special, st, R.err);
        struct stat s;
        assert_int_equal(stat(special, &s), 0);
        assert_true(S_ISFIFO(s.st_mode));
        unlink(special);
        n++;
    }
    assert_int_equal(temporaries_left(), 0);
    printf("  %d special files refused at once, none replaced\n", n);
}

/* ------------------------------------------------------- write failures */

typedef struct write_case {
    const char *args[24];
    const char *dest[4]; /* files it writes (NULL-terminated): old or whole after a failure */
} write_case;

/* Whether path, after a failed run, is as before (old[n_old]) or a whole
 * file: byte for byte what the clean run wrote (good[n_good]), or, when
 * good is NULL (a file that differs between runs), one the library loads. */
static int old_or_whole(const char *path, const char *old, size_t n_old, const char *good, size_t n_good) {
    size_t n = 0;
    char *now = test_read_file(path, &n);
    int ok = 0;
    if (!now) ok = old == NULL;
    else if (old && n == n_old && !memcmp(now, old, n)) ok = 1;
    else if (good && n == n_good && !memcmp(now, good, n)) ok = 1;
    else if (!good && strstr(path, ".gguf") && !strstr(path, ".gguf.")) {
        smdiff_model *m = NULL;
        ok = smdiff_model_create(&m) == SMDIFF_OK && smdiff_model_load_file(m, path) == SMDIFF_OK;
        smdiff_model_free(m);
    } else if (!good) {
        ok = n > 0; /* a state, log or plot: the library's suite checks their contents */
    }
    free(now);
    return ok;
}

static long shim_count(const char *const *args, const char *shim) {
    char count_env[700], preload[700], count[600];
    snprintf(count, sizeof count, "%s/count", dir);
    snprintf(count_env, sizeof count_env, "SMDIFF_SHIM_COUNT=%s", count);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
    run_cfg c = {{preload, count_env, "ASAN_OPTIONS=verify_asan_link_order=0", NULL}, 0, 0};
    char line[1024];
    join(args, line, sizeof line);
    if (run(args, &c) != 0) fail_msg("smdiff %s: status %d without a fault; said: %s", line, R.status, R.err);
    char buf[64];
    slurp(count, buf, sizeof buf);
    return atol(buf);
}

static void test_write_failures(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    char shim[600];
    const char *b = getenv("BUILD");
    snprintf(shim, sizeof shim, "%s/tests/faultshim.so", b && *b ? b : "build/cc");
    if (access(shim, R_OK) != 0) SKIP_BECAUSE("the fault shim %s is not built (make check builds it)", shim);
    const char *model = at("w.gguf"), *conv = at("c.gguf"), *tk = at("tk.gguf"), *ids = at("c.i32"),
               *saved = at("saved.gguf");
    const write_case cases[] = {
        {{"train", "--tokens", tok, "--out", model, "--init", TINY, "--steps", "2", "--batch", "1", "--seq", "16",
          "--save-every", "1", "-t", "1", NULL},
         {model, NULL}},
        {{"convert", HF, conv, NULL}, {conv, NULL}},
        {{"tokenizer", "train", "--vocab-size", "300", "-o", tk, TEXT, NULL}, {tk, NULL}},
        {{"tokenizer", "corpus", "-t", GPT2, "-o", ids, TEXT, NULL}, {ids, NULL}},
        {{"tokenize", GPT2, "--save", saved, NULL}, {saved, NULL}},
    };
    static const char OLD[] = "old contents\n";
    int injected = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const write_case *wc = &cases[i];
        char line[1024];
        join(wc->args, line, sizeof line);
        /* the clean run: what each destination holds when nothing fails */
        long calls = shim_count(wc->args, shim);
        if (calls == 0) /* clang links its sanitizer runtimes into the program, ahead of a preloaded library */
            SKIP_BECAUSE("the shim saw no write-side call: something ahead of it intercepts write");
        char *good[4] = {NULL};
        size_t n_good[4] = {0};
        for (size_t d = 0; wc->dest[d]; d++)
            if (!strstr(wc->dest[d], "w.gguf")) good[d] = test_read_file(wc->dest[d], &n_good[d]);
        for (long k = 0; k < calls; k++, injected++) {
            int e = k % 2 ? ENOSPC : EIO;
            for (size_t d = 0; wc->dest[d]; d++) { /* an old version to keep */
                FILE *f = fopen(wc->dest[d], "wb");
                assert_non_null(f);
                fputs(OLD, f);
                fclose(f);
            }
            char fail_env[64], preload[700];
            snprintf(fail_env, sizeof fail_env, "SMDIFF_SHIM_FAIL=%ld:%d", k, e);
            snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
            run_cfg c = {{preload, fail_env, "ASAN_OPTIONS=verify_asan_link_order=0", NULL}, 0, 0};
            int st = run(wc->args, &c);
            if (st != 1 || !strstr(R.err, strerror(e)))
                fail_msg("smdiff %s with write-side call %ld of %ld failing (%s): status %d, want 1 and the reason; "
                         "said: %s",
                         line, k, calls, strerror(e), st, R.err);
            for (size_t d = 0; wc->dest[d]; d++)
                if (!old_or_whole(wc->dest[d], OLD, sizeof OLD - 1, good[d], n_good[d]))
                    fail_msg("smdiff %s, call %ld failing: %s is neither as before nor whole", line, k, wc->dest[d]);
            if (temporaries_left()) fail_msg("smdiff %s, call %ld failing: a temporary file is left", line, k);
        }
        for (size_t d = 0; d < 4; d++) free(good[d]);
        printf("  smdiff %.40s...: %ld write-side calls, each failure status 1\n", line, calls);
    }
    printf("  %d write failures injected, each reported with status 1, nothing lost\n", injected);
}

/* ---------------------------------------------------- file-size limits */

typedef struct fsize_case {
    const char *args[24];
    const char *dest;      /* the file it writes (old or whole after a failure), or NULL */
    const char *appended;  /* a file it appends to: its old contents stay, or NULL */
    uint64_t limits[6];    /* RLIMIT_FSIZE values to try (0 ends) */
} fsize_case;

static void test_file_size_limits(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    const char *model = at("f.gguf"), *conv = at("fc.gguf"), *ids = at("fc.i32"), *csv = at("fe.csv");
    static char old_csv[1000];
    memset(old_csv, '#', sizeof old_csv - 1);
    old_csv[sizeof old_csv - 2] = '\n';
    const fsize_case cases[] = {
        {{"generate", "-m", TINY, "--ids", "1 2 3", "-n", "4", "--steps", "4", "-q", NULL}, NULL, NULL, {1, 8}},
        {{"eval", "elbo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", "-t", "1", "--csv", csv, NULL},
         NULL, csv, {1000, 1010, 1050, 100000}},
        {{"train", "--tokens", tok, "--out", model, "--init", TINY, "--steps", "2", "--batch", "1", "--seq", "16",
          "--save-every", "1", "-t", "1", NULL},
         model, NULL, {100, 1000, 100000, 200000, 500000, 1000000}},
        {{"convert", HF, conv, NULL}, conv, NULL, {100, 10000, 100000}},
        {{"tokenizer", "corpus", "-t", GPT2, "-o", ids, TEXT, NULL}, ids, NULL, {100, 10000}},
    };
    static const char OLD[] = "old contents\n";
    int n = 0, failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fsize_case *fc = &cases[i];
        char line[1024];
        join(fc->args, line, sizeof line);
        int failed_here = 0;
        for (size_t l = 0; l < 6 && fc->limits[l]; l++, n++) {
            const char *file = fc->dest ? fc->dest : fc->appended;
            const char *old = fc->dest ? OLD : old_csv;
            size_t n_old = strlen(old);
            if (file) {
                FILE *f = fopen(file, "wb");
                assert_non_null(f);
                fputs(old, f);
                fclose(f);
            }
            run_cfg c = {{NULL}, 0, fc->limits[l]};
            int st = run(fc->args, &c);
            if (st != 0 && (st != 1 || !strstr(R.err, strerror(EFBIG))))
                fail_msg("smdiff %s under a %llu-byte file limit: status %d, want 0, or 1 and \"%s\"; said: %s", line,
                         (unsigned long long)fc->limits[l], st, strerror(EFBIG), R.err);
            failed += st != 0, failed_here += st != 0;
            if (fc->dest && !old_or_whole(fc->dest, OLD, n_old, NULL, 0))
                fail_msg("smdiff %s under a %llu-byte file limit: %s is neither as before nor whole", line,
                         (unsigned long long)fc->limits[l], fc->dest);
            if (fc->appended) {
                size_t got = 0;
                char *now = test_read_file(fc->appended, &got);
                if (!now || got < n_old || memcmp(now, old, n_old))
                    fail_msg("smdiff %s: what %s held before is lost", line, fc->appended);
                if (st == 0 && (got == n_old || now[got - 1] != '\n'))
                    fail_msg("smdiff %s: status 0, but its row is not (whole) in %s", line, fc->appended);
                free(now);
            }
            size_t n_out = strlen(R.out);
            if (!strcmp(fc->args[0], "generate") && st == 0 && (!n_out || R.out[n_out - 1] != '\n'))
                fail_msg("smdiff %s: status 0, but its output is cut short: '%s'", line, R.out);
            if (temporaries_left()) fail_msg("smdiff %s under a file limit: a temporary file is left", line);
        }
        if (!failed_here) fail_msg("smdiff %s: no file-size limit made it fail (the limits are too large)", line);
    }
    printf("  %d runs under file-size limits, %d failed with status 1 and EFBIG's message, nothing lost\n", n, failed);
}

/* ------------------------------------------------------- memory limits */

static void test_memory_limits(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    if (UNDER_ASAN) SKIP_BECAUSE("AddressSanitizer reserves terabytes of address space: no RLIMIT_AS fits it");
    const char *const cmds[][24] = {
        {"version", NULL},
        {"info", TINY, NULL},
        {"generate", "-m", TINY, "--ids", "1 2 3", "-n", "4", "--steps", "4", "-q", NULL},
        {"tokenize", GPT2, "-p", "hello world", NULL},
        {"train", "--tokens", tok, "--out", at("m.gguf"), "--init", TINY, "--steps", "1", "--batch", "1", "--seq", "16",
         NULL},
        {"eval", "elbo", "-m", TINY, "--tokens", tok, "--seq", "16", "--windows", "1", NULL},
        {"convert", HF, at("mc.gguf"), NULL},
        {"tokenizer", "train", "--vocab-size", "300", "-o", at("mt.gguf"), TEXT, NULL},
        {NULL},
    };
    /* From 16 MiB: below about 42 MiB the dynamic loader cannot map the
     * libraries (status 127, before smdiff runs); at 44-50 MiB with 2 or
     * more CPUs OpenBLAS's load-time constructor could not start its first
     * worker and ended the process before main (status 130) until
     * cli_blas_preinit set OPENBLAS_NUM_THREADS=1 ahead of it. */
    static const int mib[] = {16, 32, 40, 44, 46, 48, 50, 56, 64, 80, 96, 128, 160, 192, 224, 256, 288, 320, 384,
                              448, 512, 768, 1024, 2048};
    int n = 0, done = 0, nomem = 0, loader = 0;
    double worst = 0;
    for (size_t i = 0; cmds[i][0]; i++)
        for (size_t l = 0; l < sizeof mib / sizeof mib[0]; l++, n++) {
            run_cfg c = {{NULL}, (uint64_t)mib[l] << 20, 0};
            char line[1024];
            join(cmds[i], line, sizeof line);
            int st = run(cmds[i], &c);
            if (R.seconds > worst) worst = R.seconds;
            if (st < 0) fail_msg("smdiff %s under a %d MiB limit: still running after %d s", line, mib[l], DEADLINE_S);
            if (st == 0) {
                done++;
                if (!strcmp(cmds[i][0], "generate") && !R.out[0]) fail_msg("smdiff %s: status 0 and no output", line);
            } else if (st == 1 && strstr(R.err, "SMDIFF_E_NOMEM")) {
                nomem++;
            } else if (st == 127 && mib[l] < 128 && strstr(R.err, "error while loading shared libraries")) {
                loader++; /* the dynamic loader, before smdiff runs */
            } else {
                fail_msg("smdiff %s under a %d MiB limit: status %d, want 0, or 1 with SMDIFF_E_NOMEM; said: %s", line,
                         mib[l], st, R.err);
            }
        }
    printf("  %d runs under 16 MiB..2 GiB limits: %d done, %d SMDIFF_E_NOMEM, %d stopped by the loader; "
           "slowest %.1f s\n",
           n, done, nomem, loader, worst);
    assert_true(done > 0 && nomem > 0);
}

/* ------------------------------------------------ resume, other options */

/* A resume with another learning rate is refused naming it; --resume-force
 * goes on. */
static void test_resume_other_options(void **state) {
    (void)state;
    SKIP_WITHOUT_CLI();
    const char *out = at("r.gguf");
    const char *first[] = {"train", "--tokens", tok, "--out", out, "--init", TINY, "--steps", "2", "--batch", "1",
                           "--seq", "16", "--save-every", "1", "-t", "1", "--lr", "1e-3", NULL};
    assert_int_equal(run(first, NULL), 0);
    const char *again[] = {"train", "--tokens", tok, "--out", out, "--init", TINY, "--steps", "3", "--batch", "1",
                           "--seq", "16", "--save-every", "1", "-t", "1", "--lr", "2e-3", "--resume", NULL};
    int st = run(again, NULL);
    if (st != 1 || !strstr(R.err, "lr 0.002 (the state has 0.001)"))
        fail_msg("a resume with another --lr: status %d, want 1 naming both values; said: %s", st, R.err);
    again[19] = "--resume-force";
    st = run(again, NULL);
    if (st != 0 || !strstr(R.err, "resumed at step 2"))
        fail_msg("--resume-force: status %d, want 0 resuming at step 2; said: %s", st, R.err);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state) {
    (void)state;
    dir = test_scratch_dir("cli-faults");
    if (!dir) return -1;
    snprintf(tok, sizeof tok, "%s/tok.i32", dir);
    snprintf(tasks, sizeof tasks, "%s/tasks.jsonl", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(folder, sizeof folder, "%s/folder", dir);
    FILE *f = fopen(tok, "wb");
    if (!f) return -1;
    for (int i = 0; i < 3000; i++) {
        int32_t id = 2 + (i * 7919) % 120;
        fwrite(&id, sizeof id, 1, f);
    }
    if (fclose(f)) return -1;
    f = fopen(tasks, "w");
    if (!f) return -1;
    fputs("{\"id\":\"a\",\"prefix\":\"It was\",\"middle\":\" a dark\",\"suffix\":\" night\"}\n", f);
    if (fclose(f)) return -1;
    /* a GGUF tokenizer (train --corpus), and a one-step model that carries
     * it (eval infill tokenizes its tasks) */
    snprintf(tokenizer, sizeof tokenizer, "%s/tokenizer.gguf", dir);
    snprintf(talker, sizeof talker, "%s/talker.gguf", dir);
    const char *cli = test_cli_path();
    char cmd[2000], out[256];
    snprintf(cmd, sizeof cmd,
             "'%s' tokenizer train --vocab-size 300 -o '%s' " TEXT " 2>/dev/null && '%s' train --corpus " TEXT " --tokens '%s/t.i32' "
             "--tokenizer '%s' --out '%s' --arch llada --vocab 300 --embd 32 --layers 1 --heads 2 --ff 64 --mask-id 299 "
             "--eos-id 298 --steps 1 --batch 1 --seq 16 -t 1 2>&1 >/dev/null",
             cli, tokenizer, cli, dir, tokenizer, talker);
    if (cli && test_run(cmd, out, sizeof out) != 0) return -1;
    return mkfifo(fifo, 0600) || mkdir(folder, 0700) ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    int r = system(cmd);
    free(dir);
    return r == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_files),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_file_size_limits),
        cmocka_unit_test(test_memory_limits),
        cmocka_unit_test(test_resume_other_options),
    };
    return cmocka_run_group_tests_name("cli_faults", tests, setup, teardown);
}
