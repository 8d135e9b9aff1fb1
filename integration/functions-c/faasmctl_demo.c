/*
 * Faasm API, driven by the real faasmctl: prints each argument of its command line, then
 *  - input "fail": prints why and returns 3;
 *  - input "file:PATH": outputs the shared file faasm://PATH (uploaded with upload.file);
 *  - any other input: outputs "hello " and the input.
 */
#include <faasm/faasm.h>
#include <stdio.h>
#include <string.h>

static uint8_t input[4096];
static uint8_t output[65536];

int main(int argc, char *argv[]) {
    for (int i = 1; i < argc; i++) {
        printf("arg %s\n", argv[i]);
    }
    long size = faasmGetInputSize();
    if (size >= (long)sizeof input) {
        return 2;
    }
    faasmGetInput(input, size);
    input[size] = 0;
    const char *text = (const char *)input;
    if (strcmp(text, "fail") == 0) {
        printf("failing as asked\n");
        return 3;
    }
    if (strncmp(text, "file:", 5) == 0) {
        char url[4200];
        snprintf(url, sizeof url, "faasm://%s", text + 5);
        FILE *f = fopen(url, "rb");
        if (!f) {
            printf("cannot open %s\n", url);
            return 4;
        }
        size_t n = fread(output, 1, sizeof output, f);
        fclose(f);
        faasmSetOutput(output, (long)n);
        return 0;
    }
    int n = snprintf((char *)output, sizeof output, "hello %s", text);
    faasmSetOutput(output, n);
    return 0;
}
