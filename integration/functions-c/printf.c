/* Faasm API: prints to stdout (captured by the call) and sets the output "printed". */
#include <faasm/faasm.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    printf("hello from printf\n");
    const char *output = "printed";
    faasmSetOutput((const uint8_t *)output, (long)strlen(output));
    return 0;
}
