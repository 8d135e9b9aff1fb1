/*
 * Faasm API, shared files: outputs the content of /data/greeting.txt (a file uploaded with
 * PUT /file, FilePath: /data/greeting.txt). If it cannot be read, outputs strerror(errno)
 * (e.g. "No such file or directory") and fails with return code 1.
 */
#include <errno.h>
#include <faasm/faasm.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    FILE *f = fopen("/data/greeting.txt", "rb");
    if (!f) {
        const char *why = strerror(errno);
        faasmSetOutput((const uint8_t *)why, (long)strlen(why));
        return 1;
    }
    static uint8_t content[65536];
    size_t n = fread(content, 1, sizeof content, f);
    fclose(f);
    faasmSetOutput(content, (long)n);
    return 0;
}
