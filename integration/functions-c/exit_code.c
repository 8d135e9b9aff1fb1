/* Faasm API: main returns 3, so the call fails with return code 3 ("main returned 3"). */
#include <faasm/faasm.h>

int main(void) {
    return 3;
}
