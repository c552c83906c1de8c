# smdiff -- build, test, install.
#
#   make                 libsmdiff.a, libsmdiff.so.X.Y.Z and the smdiff CLI
#   make check           build and run every test (cmocka), the link examples and
#                        the Python package's tests (check-python)
#   make check-python    install python/ into a throwaway venv, run its pytest suite
#   make check SAN=1     the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check-tsan      the threads and server tests under ThreadSanitizer
#   make check-abi       compare the shared library with the committed ABI baseline
#   make abi-baseline    regenerate that baseline (only when an ABI break is intended)
#   make bench           benchmarks (see docs/PERFORMANCE.md); SHARED_DATA=DIR
#                        adds the large-corpus tokenizer benchmark
#   make bench-7b        a Dream-7B-shaped Q4_K_M model: one step and its memory
#   make reproduce SHARED_DATA=DIR   the soft-masking experiment of
#                        docs/RESULTS.md (hours; DIR holds the corpora)
#   make fuzz            libFuzzer targets (clang)
#   make install PREFIX=/usr/local DESTDIR=
#   make clean
#
# Variants build into their own folder, so `make CC=clang` or `SAN=1` never
# mixes objects with the default build.

VERSION_MAJOR := 0
VERSION_MINOR := 2
VERSION_PATCH := 0
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
CXX_FOR_CC := $(if $(findstring clang,$(CC)),clang++,c++)
CXX ?= $(CXX_FOR_CC)
ifeq ($(origin CXX),default)
CXX := $(CXX_FOR_CC)
endif
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=
# The large corpora (Project Gutenberg novels and others, see docs/RESULTS.md)
# used only by `make bench` and `make reproduce`; tests never need them, every
# file a test reads is in tests/data/.
SHARED_DATA ?=

VARIANT := $(notdir $(firstword $(CC)))$(if $(SAN),-san)
BUILD ?= build/$(VARIANT)

# ------------------------------------------------------------ dependencies
# Each dependency is found through pkg-config; a missing one stops the build
# with one line naming the Debian package that provides it.
PKGS := openblas:libopenblas-dev libuv:libuv1-dev libpcre2-8:libpcre2-dev jansson:libjansson-dev \
        libutf8proc:libutf8proc-dev libxxhash:libxxhash-dev
TEST_PKGS := cmocka:libcmocka-dev

NO_DEP_GOALS := clean help
ifneq ($(filter-out $(NO_DEP_GOALS),$(or $(MAKECMDGOALS),all)),)
ifeq ($(shell command -v pkg-config 2>/dev/null),)
$(error missing pkg-config: apt-get install pkg-config)
endif
check_pkg = $(if $(shell pkg-config --exists $(word 1,$(subst :, ,$(1))) && echo ok),,$(error missing dependency $(word 1,$(subst :, ,$(1))): apt-get install $(word 2,$(subst :, ,$(1)))))
$(foreach p,$(PKGS),$(call check_pkg,$(p)))
# http-parser ships no pkg-config file in Debian: found by its header.
ifeq ($(shell printf '\043include <http_parser.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo ok),)
$(error missing dependency http_parser: apt-get install libhttp-parser-dev)
endif
ifneq ($(filter check check-% test% bench fuzz,$(MAKECMDGOALS)),)
$(foreach p,$(TEST_PKGS),$(call check_pkg,$(p)))
endif
endif

PKG_NAMES := $(foreach p,$(PKGS),$(word 1,$(subst :, ,$(p))))
# What smdiff.pc requires for a static link. Debian (and libuv's own build)
# ships libuv's static archive as libuv_a.a, described by libuv-static.pc:
# naming it makes `pkg-config --static --libs smdiff` say -luv_a, which links
# (a plain -luv finds no libuv.a there).
PC_REQUIRES_PRIVATE := $(if $(shell pkg-config --exists libuv-static 2>/dev/null && echo y),$(PKG_NAMES:libuv=libuv-static),$(PKG_NAMES))
DEP_CFLAGS := $(shell pkg-config --cflags $(PKG_NAMES) 2>/dev/null)
NOPC_LIBS := -lhttp_parser
DEP_LIBS := $(shell pkg-config --libs $(PKG_NAMES) 2>/dev/null) $(NOPC_LIBS) -lm -lpthread -ldl
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# ------------------------------------------------------------------ flags
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT ?= -O2
CFLAGS_BASE := -std=c11 $(OPT) -g -fPIC -fvisibility=hidden -D_GNU_SOURCE -DSMDIFF_BUILDING \
               -Iinclude -Ilib $(DEP_CFLAGS)
ifdef SAN
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer
endif
ALL_CFLAGS := $(CFLAGS_BASE) $(WARN) $(SAN_FLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SAN_FLAGS) $(LDFLAGS)
# The CLI is a consumer of the public headers only (it opts in to the
# experimental section in cli.h): no lib/ on its include path.
CLI_CFLAGS := -std=c11 $(OPT) -g -D_GNU_SOURCE -Iinclude $(WARN) $(SAN_FLAGS) $(CFLAGS)
# Tests and tools may use internal headers and relaxed prototypes.
TEST_CFLAGS := -std=c11 $(OPT) -g -D_GNU_SOURCE -DSMDIFF_EXPERIMENTAL -Iinclude -Ilib -Itests -Itests/support $(DEP_CFLAGS) $(CMOCKA_CFLAGS) \
               -Wall -Wextra -Werror -Wno-unused-parameter $(SAN_FLAGS) $(CFLAGS)

# ---------------------------------------------------------------- sources
LIB_SRC := $(sort $(wildcard lib/*.c lib/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(sort $(wildcard examples/cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(sort $(wildcard tests/support/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

STATIC_LIB := $(BUILD)/libsmdiff.a
SHARED_LIB := $(BUILD)/libsmdiff.so.$(VERSION)
SONAME := libsmdiff.so.$(VERSION_MAJOR)
CLI := $(BUILD)/smdiff

.PHONY: all lib cli check test check-abi abi-baseline abi-lib install uninstall clean bench fuzz help reproduce \
        check-examples check-symbols check-python check-tsan tools bench-7b
.DEFAULT_GOAL := all

all: lib cli
lib: $(STATIC_LIB) $(SHARED_LIB)
cli: $(CLI)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/examples/cli/%.o: examples/cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -MMD -MP -c $< -o $@

# The playground page is embedded with .incbin, which -MMD does not see.
$(BUILD)/obj/lib/serve/playground.o build/fuzz/obj/lib/serve/playground.o: lib/serve/playground.html

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJ) lib/smdiff.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/smdiff.map -Wl,--no-undefined \
	    $(ALL_LDFLAGS) -o $@ $(LIB_OBJ) $(DEP_LIBS)
	ln -sf libsmdiff.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libsmdiff.so

# The CLI links the static library: one self-contained binary. build/smdiff
# points at the most recently built variant's CLI.
$(CLI): $(CLI_OBJ) $(STATIC_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIB) $(DEP_LIBS)
	ln -sf $(VARIANT)/smdiff build/smdiff

# Tests link the static library so they can reach internal functions.
$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_SUPPORT) $(STATIC_LIB) $(DEP_LIBS) $(CMOCKA_LIBS) $(SAN_FLAGS)

# tests/test_cli.c holds every command's --help against its getopt table:
# it links the CLI's objects (all but main.o) besides the library.
CLI_PARTS := $(filter-out $(BUILD)/obj/examples/cli/main.o,$(CLI_OBJ))
$(BUILD)/tests/test_cli: tests/test_cli.c $(TEST_SUPPORT) $(CLI_PARTS) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Iexamples/cli -o $@ $< $(TEST_SUPPORT) $(CLI_PARTS) $(STATIC_LIB) $(DEP_LIBS) \
	    $(CMOCKA_LIBS) $(SAN_FLAGS)

# ------------------------------------------------------------------ tests
# The LD_PRELOAD shim of the command-line fault tests (tests/shim/): not
# instrumented, loaded into the CLI of the variant under test.
FAULT_SHIM := $(BUILD)/tests/faultshim.so
$(FAULT_SHIM): tests/shim/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fPIC -shared -Wall -Wextra -Werror -o $@ $< -ldl

# The benchmarks are built (not run) by check, so that an internal change
# cannot leave `make bench` broken.
check test: $(TEST_BIN) $(CLI) $(FAULT_SHIM) $(BENCH_BIN) check-symbols check-examples
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh tests/run.sh $(TEST_BIN)
	@$(MAKE) --no-print-directory check-python

# The Python package (python/, docs/PYTHON.md) as a user installs it: pip
# builds and installs it offline (--no-index) into a virtual environment that
# sees Debian's numpy and pytest (--system-site-packages), and its tests run
# there, outside the source folder, against this build's library and CLI.
# Under SAN=1 the sanitizer runtime must be the first library loaded, so it
# is preloaded into the interpreter (leak checks off: Python keeps memory
# until exit by design).
PYVENV := $(BUILD)/pyvenv
ifdef SAN
PY_ASAN_RT := $(shell $(CC) -print-file-name=$(if $(findstring clang,$(CC)),libclang_rt.asan-x86_64.so,libasan.so))
PY_SAN_ENV := LD_PRELOAD=$(PY_ASAN_RT) ASAN_OPTIONS=detect_leaks=0:handle_segv=1
endif
check-python: $(SHARED_LIB) $(CLI)
	@rm -rf $(PYVENV)
	@$(PYTHON) -m venv --system-site-packages --without-pip $(PYVENV)
	@$(PYTHON) -m pip --python $(PYVENV)/bin/python install --quiet --no-index --no-cache-dir \
	    --disable-pip-version-check ./python
	@cd $(PYVENV) && SMDIFF_LIB=$(abspath $(SHARED_LIB)) SMDIFF_CLI=$(abspath $(CLI)) \
	    SMDIFF_PY_INSTALLED=$(abspath $(PYVENV)) SMDIFF_REPO=$(CURDIR) $(PY_SAN_ENV) \
	    bin/python -m pytest -q -p no:cacheprovider $(CURDIR)/python/tests

# tests/test_threads.c and tests/test_serve.c built with ThreadSanitizer in
# their own folder (the whole library instrumented): a data race between
# threads sharing a model, or between the server's loop and its batch
# worker, fails them. CI runs it; it is not part of `make check` (a third build).
# tests/tsan.supp: OpenBLAS's uninstrumented worker threads only.
TSAN_BUILD := build/$(notdir $(firstword $(CC)))-tsan
check-tsan:
	@$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) SAN= CFLAGS="-fsanitize=thread -Wno-psabi" LDFLAGS="-fsanitize=thread" \
	    $(TSAN_BUILD)/tests/test_threads $(TSAN_BUILD)/tests/test_serve $(TSAN_BUILD)/smdiff
	TSAN_OPTIONS="halt_on_error=1 abort_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    $(TSAN_BUILD)/tests/test_threads
	BUILD=$(TSAN_BUILD) TSAN_OPTIONS="halt_on_error=1 abort_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    $(TSAN_BUILD)/tests/test_serve

# Only the public functions are exported, each in the version node of its
# header section (stable: SMDIFF_0 / SMDIFF_0.2, experimental:
# SMDIFF_EXPERIMENTAL_0.2), and the SONAME carries the major version.
check-symbols: $(SHARED_LIB)
	@sh scripts/check-symbols.sh $(SHARED_LIB) $(SONAME) include/smdiff/smdiff.h include/smdiff/smdiff_decoder.h

# Link examples/consumer.c as a user would: `make install` to a prefix, then
# nothing but pkg-config (README.md, "Linking"):
#   shared        cc app.c $(pkg-config --cflags --libs smdiff)
#   fully static  cc -static app.c $(pkg-config --static --cflags --libs smdiff)
#                 (not under SAN=1: the sanitizer runtimes do not link statically)
#   libsmdiff.a in a dynamic program: the same --static flags without -static
#                 where only libsmdiff.a is installed
# Each is checked to be what it claims and run; then a C++ unit that includes
# both headers with the experimental section, the custom strategy example,
# and a check that the experimental section is hidden without
# SMDIFF_EXPERIMENTAL.
STAGE := $(abspath $(BUILD)/stage)
CONSUMER_CC := $(CC) -std=c99 -Wall -Wextra -Werror $(SAN_FLAGS)
check-examples: $(STATIC_LIB) $(SHARED_LIB)
	@rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install PREFIX=$(STAGE)/prefix BUILD=$(BUILD) >/dev/null
	@mkdir -p $(STAGE)/static-only/lib/pkgconfig && cp -R $(STAGE)/prefix/include $(STAGE)/static-only/ && \
	  cp $(STAGE)/prefix/lib/libsmdiff.a $(STAGE)/static-only/lib/ && \
	  sed 's|$(STAGE)/prefix|$(STAGE)/static-only|' $(STAGE)/prefix/lib/pkgconfig/smdiff.pc \
	    > $(STAGE)/static-only/lib/pkgconfig/smdiff.pc
	@PKG_CONFIG_PATH=$(STAGE)/prefix/lib/pkgconfig sh -c '$(CONSUMER_CC) -o $(BUILD)/consumer-shared \
	    examples/consumer.c $$(pkg-config --cflags --libs smdiff)'
	@readelf -d $(BUILD)/consumer-shared | grep -q 'NEEDED.*\[$(SONAME)\]' || \
	  { echo "check-examples: consumer-shared does not load $(SONAME)"; exit 1; }
	@LD_LIBRARY_PATH=$(STAGE)/prefix/lib $(BUILD)/consumer-shared
	@PKG_CONFIG_PATH=$(STAGE)/static-only/lib/pkgconfig sh -c '$(CONSUMER_CC) -o $(BUILD)/consumer-static-lib \
	    examples/consumer.c $$(pkg-config --static --cflags --libs smdiff)'
	@! readelf -d $(BUILD)/consumer-static-lib | grep -q 'NEEDED.*libsmdiff' || \
	  { echo "check-examples: consumer-static-lib loads libsmdiff.so"; exit 1; }
	@$(BUILD)/consumer-static-lib
ifdef SAN
	@echo "check-examples: no fully static consumer under SAN=1 (the sanitizer runtimes do not link statically)"
else
	@PKG_CONFIG_PATH=$(STAGE)/prefix/lib/pkgconfig sh -c '$(CONSUMER_CC) -static -o $(BUILD)/consumer-static \
	    examples/consumer.c $$(pkg-config --static --cflags --libs smdiff)' 2> $(BUILD)/consumer-static.log || \
	  { cat $(BUILD)/consumer-static.log; echo "check-examples: the fully static link needs every dependency's"; \
	    echo "  static archive (Debian: the packages of scripts/debian-packages.txt)"; exit 1; }
	@! readelf -l $(BUILD)/consumer-static | grep -q INTERP || \
	  { echo "check-examples: consumer-static is not statically linked"; exit 1; }
	@$(BUILD)/consumer-static
endif
	@$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic $(SAN_FLAGS) -Iinclude -o $(BUILD)/consumer-cxx \
	    examples/consumer_cxx.cpp $(STATIC_LIB) $(DEP_LIBS)
	@$(BUILD)/consumer-cxx
	@$(CC) -std=c99 -Wall -Wextra -Werror $(SAN_FLAGS) -Iinclude -o $(BUILD)/custom-strategy \
	    examples/custom_strategy.c $(STATIC_LIB) $(DEP_LIBS)
	@$(BUILD)/custom-strategy tests/data/tiny_llada_f32.gguf
	@printf '#include <smdiff/smdiff.h>\nint f(void);\nint f(void) { return smdiff_trainer_create(0); }\n' > $(BUILD)/optin.c
	@if $(CC) -std=c99 -Wall -Werror -Iinclude -c -o $(BUILD)/optin.o $(BUILD)/optin.c 2>/dev/null; then \
	  echo "check-examples: the experimental section is visible without SMDIFF_EXPERIMENTAL"; exit 1; fi
	@$(CC) -std=c99 -Wall -Werror -DSMDIFF_EXPERIMENTAL -Iinclude -c -o $(BUILD)/optin.o $(BUILD)/optin.c
	@echo "check-examples: consumers (shared, $(if $(SAN),,fully static, )libsmdiff.a in a dynamic program; pkg-config only), C++ and the custom strategy built and ran"
	@echo "  the experimental section is visible with SMDIFF_EXPERIMENTAL only"

# ------------------------------------------------------------------- ABI
ABI_BASELINE := abi/libsmdiff.abi
ABI_BUILD := build/abi
# The experimental section (version node SMDIFF_EXPERIMENTAL_*) is left out
# of the baseline and of the comparison: abi/experimental.suppr plus the
# section's names, see scripts/abi-suppressions.sh.
ABI_SUPPR := $(ABI_BUILD)/abi.suppr
ABIDW := abidw --headers-dir include/smdiff --no-corpus-path --no-comp-dir-path --suppressions $(ABI_SUPPR)
abi-lib:
	@$(MAKE) --no-print-directory BUILD=$(ABI_BUILD) CC=gcc SAN= $(ABI_BUILD)/libsmdiff.so.$(VERSION) >/dev/null
	@sh scripts/abi-suppressions.sh include/smdiff/smdiff.h > $(ABI_SUPPR)

check-abi: abi-lib
	$(ABIDW) --out-file $(ABI_BUILD)/current.abi $(ABI_BUILD)/libsmdiff.so.$(VERSION)
	@abidiff --no-added-syms --suppressions $(ABI_SUPPR) --headers-dir1 include/smdiff --headers-dir2 include/smdiff \
	    $(ABI_BASELINE) $(ABI_BUILD)/current.abi; rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "check-abi: ABI changed beyond additions (abidiff exit $$rc)"; exit 1; fi; \
	echo "check-abi: the stable section has no change beyond additions against $(ABI_BASELINE)"

abi-baseline: abi-lib
	@mkdir -p abi
	$(ABIDW) --out-file $(ABI_BASELINE) $(ABI_BUILD)/libsmdiff.so.$(VERSION)

# --------------------------------------------------------------- install
install: $(STATIC_LIB) $(SHARED_LIB)
	install -d $(DESTDIR)$(INCLUDEDIR)/smdiff $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/smdiff/smdiff.h include/smdiff/smdiff_decoder.h $(DESTDIR)$(INCLUDEDIR)/smdiff/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libsmdiff.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsmdiff.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES_PRIVATE)|' -e 's|@LIBS_PRIVATE@|$(NOPC_LIBS)|' \
	    pkgconfig/smdiff.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/smdiff.pc
	@if [ -f $(CLI) ]; then install -d $(DESTDIR)$(BINDIR) && install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/; fi
	@for f in models/*.gguf; do [ -f "$$f" ] || continue; install -d $(DESTDIR)$(PREFIX)/share/smdiff; \
	  install -m 644 "$$f" $(DESTDIR)$(PREFIX)/share/smdiff/; done

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/smdiff/smdiff.h $(DESTDIR)$(INCLUDEDIR)/smdiff/smdiff_decoder.h
	rm -f $(DESTDIR)$(LIBDIR)/libsmdiff.a $(DESTDIR)$(LIBDIR)/libsmdiff.so* $(DESTDIR)$(LIBDIR)/pkgconfig/smdiff.pc
	rm -f $(DESTDIR)$(BINDIR)/smdiff
	rm -rf $(DESTDIR)$(PREFIX)/share/smdiff

clean:
	rm -rf build

help:
	@sed -n '2,14p' Makefile

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ------------------------------------------------------------------- fuzz
# libFuzzer targets fuzz/fuzz_*.c, built with clang and ASan+UBSan; each runs
# FUZZ_SECONDS on a scratch corpus (fuzz/corpus-run/, ignored) seeded from
# the committed fuzz/corpus/<target>/ (an empty one is made when a target
# has none, so a fresh clone fuzzes), with fuzz/<target>.dict and the
# libFuzzer flags in fuzz/<target>.options when present. CI runs
# FUZZ_SECONDS=10. See docs/FUZZING.md.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
.SECONDARY: $(FUZZ_LIB_OBJ)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_BASE) $(WARN) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(CFLAGS_BASE) $(WARN) -O1 -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB_OBJ) $(DEP_LIBS)

# fuzz_cli_args: the command line's parser, with the CLI's objects (not main)
FUZZ_CLI_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out examples/cli/main.c,$(CLI_SRC)))
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_CLI_OBJ:.o=.d)
.SECONDARY: $(FUZZ_CLI_OBJ)
$(FUZZ_BUILD)/fuzz_cli_args: fuzz/fuzz_cli_args.c $(FUZZ_LIB_OBJ) $(FUZZ_CLI_OBJ)
	$(FUZZ_CC) $(CFLAGS_BASE) $(WARN) -Iexamples/cli -O1 -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_CLI_OBJ) \
	    $(FUZZ_LIB_OBJ) $(DEP_LIBS)

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do n=$$(basename $$t); mkdir -p fuzz/corpus-run/$$n fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  d=; [ -f fuzz/$$n.dict ] && d=-dict=fuzz/$$n.dict; \
	  o=; [ -f fuzz/$$n.options ] && o=$$(cat fuzz/$$n.options); \
	  nice $$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=1024 -print_final_stats=1 $$d $$o \
	    fuzz/corpus-run/$$n fuzz/corpus/$$n || exit 1; done

# ------------------------------------------------------------- benchmarks
# Every bench/*.c is a program linked like a test; `make bench` builds and
# runs them all in turn (BENCH_QUICK=1 asks each for its reduced set).
# SHARED_DATA reaches the benchmarks and scripts as SMDIFF_SHARED_DATA (an
# SMDIFF_SHARED_DATA already in the environment is kept when it is unset).
DATA_ENV := $(if $(SHARED_DATA),SMDIFF_SHARED_DATA=$(SHARED_DATA))

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(STATIC_LIB) $(DEP_LIBS)

# docs/RESULTS.md end to end: reference AR model, continued pretraining with
# binary masking and with soft-masking, evaluation, tables and plots.
reproduce: $(CLI)
	OUT=$(BUILD)/reproduce SMDIFF=$(CLI) $(DATA_ENV) examples/reproduce.sh

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $(DATA_ENV) $$b || exit 1; done

# Benchmark tools (bench/tools/*.c, not run by `make bench`): make_model
# writes a large model of a real shape with random weights, model_step
# times steps on a file and reports its memory.
TOOL_BIN := $(patsubst bench/tools/%.c,$(BUILD)/tools/%,$(sort $(wildcard bench/tools/*.c)))
$(BUILD)/tools/%: bench/tools/%.c $(wildcard bench/*.h) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ibench -o $@ $< $(STATIC_LIB) $(DEP_LIBS)
tools: $(TOOL_BIN)

# docs/PERFORMANCE.md's 7B figures: a Dream-7B-shaped Q4_K_M file (about
# 4.7 GB, in BENCH_7B_DIR, default /tmp; deleted afterwards), one step at
# 256 positions, its memory and the plan at 512 and 2048 positions.
bench-7b: $(TOOL_BIN)
	@BUILD=$(BUILD) sh bench/bench-7b.sh
