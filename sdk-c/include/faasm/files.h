/* Faasm's file helpers (C++), over WASI's libc: shared files uploaded to fwasm are read-only
 * files under /. */
#ifndef FAASM_FILES_H
#define FAASM_FILES_H

#ifdef __cplusplus
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace faasm {

/* The file's size in bytes, or -1 if it cannot be opened. */
inline long getFileLength(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat info;
    long size = fstat(fd, &info) == 0 ? static_cast<long>(info.st_size) : -1;
    close(fd);
    return size;
}

/* The whole file as a malloc'ed, NUL-terminated string; nullptr if it cannot be read or is
 * empty. */
inline char *readFileToString(const char *path) {
    long size = getFileLength(path);
    if (size <= 0) return nullptr;
    FILE *file = std::fopen(path, "rb");
    if (file == nullptr) return nullptr;
    char *text = static_cast<char *>(std::malloc(static_cast<size_t>(size) + 1));
    size_t read = std::fread(text, 1, static_cast<size_t>(size), file);
    std::fclose(file);
    if (read == 0) {
        std::free(text);
        return nullptr;
    }
    text[read] = '\0';
    return text;
}

} // namespace faasm
#endif

#endif /* FAASM_FILES_H */
