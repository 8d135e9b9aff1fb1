/* Faasm API: a 1 MiB array on the stack, as Faasm's stackheap demo has (Faasm gives functions
 * a 4 MiB stack), filled and summed; outputs the sum. */
#include <faasm/faasm.h>
#include <stdio.h>
#include <string.h>

static long sum_of(volatile unsigned char *bytes, long n) {
    long sum = 0;
    for (long i = 0; i < n; i++) sum += bytes[i];
    return sum;
}

int main(void) {
    volatile unsigned char big[1 << 20];
    for (long i = 0; i < (long)sizeof big; i++) big[i] = (unsigned char)(i & 3);
    char out[32];
    snprintf(out, sizeof out, "%ld", sum_of(big, sizeof big));
    faasmSetOutput((const uint8_t *)out, (long)strlen(out));
    return 0;
}
