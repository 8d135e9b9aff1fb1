/* A Faasm zygote that fails (returns 3): every call fails saying so. */
#include <faasm/faasm.h>

FAASM_ZYGOTE() { return 3; }

int main(void) { return 0; }
