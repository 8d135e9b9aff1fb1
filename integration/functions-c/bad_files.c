/*
 * Faasm API, what the sandbox refuses. Tries three things and outputs one line each,
 * "<what>: <errno name>" (or "<what>: ok"):
 *   open /../../etc/passwd   ENOTCAPABLE: the path leaves the "/" preopen (the host
 *                            canonicalises "..", and refuses to go above the root).
 *   open /missing.txt        ENOENT: no such shared file.
 *   link                     ENOSYS: path_link is not among the WASI functions fwasm
 *                            implements; wasi-libc passes the host's errno through.
 * So the expected output is
 *   "open /../../etc/passwd: ENOTCAPABLE\nopen /missing.txt: ENOENT\nlink: ENOSYS\n".
 */
#include <errno.h>
#include <faasm/faasm.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EROFS: return "EROFS";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTSUP: return "ENOTSUP";
    default: return "other";
    }
}

static char output[512];
static size_t len;

static void report(const char *what, int ok) {
    len += snprintf(output + len, sizeof output - len, "%s: %s\n", what,
                    ok ? "ok" : errno_name(errno));
}

int main(void) {
    errno = 0;
    FILE *f = fopen("/../../etc/passwd", "r");
    report("open /../../etc/passwd", f != NULL);
    if (f) fclose(f);

    errno = 0;
    f = fopen("/missing.txt", "r");
    report("open /missing.txt", f != NULL);
    if (f) fclose(f);

    errno = 0;
    report("link", link("/a", "/b") == 0);

    faasmSetOutput((const uint8_t *)output, (long)len);
    return 0;
}
