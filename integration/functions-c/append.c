/*
 * Faasm API, append lists: clears the list at "append_example", appends N elements of 4 bytes
 * each (the numbers 0 .. N-1 as little-endian u32; N is the input as decimal text, default 5),
 * reads them back with faasmReadAppendedState and outputs them as text: "0,1,2,3,4" for N=5.
 */
#include <faasm/faasm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "append_example"

int main(void) {
    char input[16] = {0};
    long n = 5;
    if (faasmGetInputSize() > 0) {
        faasmGetInput((uint8_t *)input, sizeof input - 1);
        n = strtol(input, NULL, 10);
    }
    if (n < 0 || n > 10000) return 2;

    faasmClearAppendedState(KEY);
    for (long i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i;
        faasmAppendState(KEY, (const uint8_t *)&v, sizeof v);
    }

    uint32_t *values = calloc(n + 1, sizeof *values);
    faasmReadAppendedState(KEY, (uint8_t *)values, n * (long)sizeof *values, n);

    char *output = malloc(n * 12 + 1);
    size_t len = 0;
    output[0] = 0;
    for (long i = 0; i < n; i++) {
        len += sprintf(output + len, i ? ",%u" : "%u", values[i]);
    }
    faasmSetOutput((const uint8_t *)output, (long)len);
    return 0;
}
