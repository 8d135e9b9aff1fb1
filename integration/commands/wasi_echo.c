/* A plain WASI command: no fwasm or Faasm headers, only libc. fwasm runs it as a function
 * (the request body on stdin, stdout as the reply). Built by the tests with
 *   clang --target=wasm32-wasi -O2 -s -o wasi_echo.wasm wasi_echo.c
 *
 * With no arguments it copies stdin to stdout and says how much on stderr;
 * `args` prints argv, one per line; `env NAME` prints NAME's value;
 * `exit CODE` says goodbye on stderr and exits with CODE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "args") == 0) {
        for (int i = 0; i < argc; i++) printf("%s\n", argv[i]);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "env") == 0) {
        const char *value = getenv(argv[2]);
        printf("%s\n", value ? value : "(unset)");
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "exit") == 0) {
        fprintf(stderr, "exiting with %s\n", argv[2]);
        return atoi(argv[2]);
    }
    char buffer[4096];
    size_t total = 0, n;
    while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) {
        fwrite(buffer, 1, n, stdout);
        total += n;
    }
    fprintf(stderr, "echoed %zu bytes\n", total);
    return 0;
}
