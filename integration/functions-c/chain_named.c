/*
 * Faasm API, chaining by name. Upload this one source under three names:
 *   chain_named    (any input): chains chain_named_b with "abc" and chain_named_c with "xyz",
 *                  awaits both and outputs "b:<output of b>,c:<output of c>";
 *                  so the expected output is "b:ABC,c:zyx".
 *   chain_named_b  (input "abc"): outputs its input upper-cased ("ABC").
 *   chain_named_c  (input "xyz"): outputs its input reversed ("zyx").
 * Which role a call plays comes from its function name (argv[0]).
 */
#include <faasm/faasm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int upper(void) {
    long n = faasmGetInputSize();
    uint8_t *buf = malloc(n + 1);
    faasmGetInput(buf, n);
    for (long i = 0; i < n; i++) {
        if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 'a' - 'A';
    }
    faasmSetOutput(buf, n);
    return 0;
}

static int reverse(void) {
    long n = faasmGetInputSize();
    uint8_t *in = malloc(n + 1), *out = malloc(n + 1);
    faasmGetInput(in, n);
    for (long i = 0; i < n; i++) out[i] = in[n - 1 - i];
    faasmSetOutput(out, n);
    return 0;
}

int main(int argc, char *argv[]) {
    const char *self = argc > 0 ? argv[0] : "";
    if (strcmp(self, "chain_named_b") == 0) return upper();
    if (strcmp(self, "chain_named_c") == 0) return reverse();

    unsigned int b = faasmChainNamed("chain_named_b", (const uint8_t *)"abc", 3);
    unsigned int c = faasmChainNamed("chain_named_c", (const uint8_t *)"xyz", 3);
    uint8_t out_b[64], out_c[64];
    unsigned int rb = faasmAwaitCallOutput(b, out_b, sizeof out_b - 1);
    unsigned int rc = faasmAwaitCallOutput(c, out_c, sizeof out_c - 1);
    out_b[sizeof out_b - 1] = out_c[sizeof out_c - 1] = 0;

    char output[160];
    if (rb != 0 || rc != 0) {
        snprintf(output, sizeof output, "failed: b=%u (%s), c=%u (%s)", rb, out_b, rc, out_c);
        faasmSetOutput((const uint8_t *)output, (long)strlen(output));
        return 1;
    }
    snprintf(output, sizeof output, "b:%s,c:%s", out_b, out_c);
    faasmSetOutput((const uint8_t *)output, (long)strlen(output));
    return 0;
}
