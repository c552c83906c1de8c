/* playground.c -- the page served at / : lib/serve/playground.html, plain
 * HTML and JavaScript with no build step, embedded in the library at
 * compile time so an installed server needs no data files. The assembler's
 * .incbin copies the file's bytes into .rodata (the Makefile makes this
 * object depend on the .html); it is supported by the GNU and LLVM
 * assemblers on every ELF target smdiff builds for. */
#include "serve.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        "sd_playground_start_:\n"
        ".incbin \"lib/serve/playground.html\"\n"
        "sd_playground_end_:\n"
        ".byte 0\n"
        ".previous\n");

extern const char sd_playground_start_[] __asm__("sd_playground_start_");
extern const char sd_playground_end_[] __asm__("sd_playground_end_");

const char *sd_playground_html(size_t *n) {
    *n = (size_t)(sd_playground_end_ - sd_playground_start_);
    return sd_playground_start_;
}
