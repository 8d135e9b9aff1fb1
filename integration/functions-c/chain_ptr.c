/*
 * Faasm API, chaining a function of this module by pointer: main chains `other` twice with
 * the inputs "one" and "two", awaits both outputs and outputs their concatenation,
 * "[one][two]". Each chained call runs `other` instead of main and sees only its own input.
 */
#include <faasm/faasm.h>
#include <string.h>

int other(void) {
    long n = faasmGetInputSize();
    uint8_t out[64] = "[";
    if (n > 60) n = 60;
    faasmGetInput(out + 1, n);
    out[n + 1] = ']';
    faasmSetOutput(out, n + 2);
    return 0;
}

int main(void) {
    unsigned int a = faasmChain(other, (const uint8_t *)"one", 3);
    unsigned int b = faasmChain(other, (const uint8_t *)"two", 3);
    uint8_t out_a[32], out_b[32];
    unsigned int ra = faasmAwaitCallOutput(a, out_a, sizeof out_a - 1);
    unsigned int rb = faasmAwaitCallOutput(b, out_b, sizeof out_b - 1);
    out_a[sizeof out_a - 1] = out_b[sizeof out_b - 1] = 0;
    if (ra != 0 || rb != 0) return 1;

    char output[64];
    strcpy(output, (const char *)out_a);
    strcat(output, (const char *)out_b);
    faasmSetOutput((const uint8_t *)output, (long)strlen(output));
    return 0;
}
