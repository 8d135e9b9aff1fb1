/* What Faasm's toolchain gives a function beyond plain WASI: clock() (process-clock
   emulation), anonymous mmap as memory, and printf of long double. Prints what it saw. */
#include <faasm/faasm.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int main(void) {
    clock_t start = clock();
    if (start == (clock_t)-1) return 1;
    size_t len = 3 << 20;
    char *memory = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 2;
    memset(memory, 7, len);
    if (memory[len - 1] != 7) return 3;
    if (munmap(memory, len) != 0) return 4;
    char out[64];
    long double third = 1.0L / 3.0L;
    snprintf(out, sizeof out, "%.6Lf", third);
    faasmSetOutput((const uint8_t *)out, (long)strlen(out));
    return 0;
}
