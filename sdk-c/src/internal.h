/* Shared by the SDK's sources; not part of its API. */
#ifndef FWASM_INTERNAL_H
#define FWASM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Writes out whatever stdio still buffers (printf output), so the host captures it. */
void fwasm__flush_stdio(void);

/* The little-endian u32 at `p`. */
static inline uint32_t fwasm__le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 if the `len` bytes at `p` are valid UTF-8. */
int fwasm__utf8_valid(const uint8_t *p, size_t len);

/* A short message built without printf, cut at FWASM__MSG_MAX bytes. */
#define FWASM__MSG_MAX 1024
typedef struct fwasm__msg {
    char text[FWASM__MSG_MAX + 1];
    size_t len;
} fwasm__msg;
void fwasm__msg_bytes(fwasm__msg *m, const void *p, size_t len);
void fwasm__msg_str(fwasm__msg *m, const char *s);
void fwasm__msg_i64(fwasm__msg *m, int64_t v);
/* Appends ": <last_error>" if the host has a message. */
void fwasm__msg_last_error(fwasm__msg *m);

#endif
