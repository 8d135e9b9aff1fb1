/* Faasm API: the call's command line (Faasm's `cmdline`) is main's argv after the program's
   name; the output is those arguments joined by spaces, then argv[0]. */
#include <faasm/faasm.h>

#include <stdio.h>

int main(int argc, char *argv[]) {
    char out[256];
    int n = 0;
    for (int i = 1; i < argc && n < (int)sizeof out; i++) {
        n += snprintf(out + n, sizeof out - (size_t)n, "%s%s", i > 1 ? " " : "", argv[i]);
    }
    if (n < (int)sizeof out) {
        n += snprintf(out + n, sizeof out - (size_t)n, " (%s)", argc > 0 ? argv[0] : "");
    }
    faasmSetOutput((const uint8_t *)out, n);
    return 0;
}
