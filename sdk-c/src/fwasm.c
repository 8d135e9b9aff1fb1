/*
 * The fwasm C SDK: the exports of function-wasm ABI v1 (abi/ABI.md sections 2, 5 and 6) and
 * thin wrappers over its imports (section 3). Compiled into every C/C++ function.
 *
 * Each call gets a fresh instance, so this file keeps its per-call data in globals and never
 * frees anything the host still needs: the request buffer from fwasm_alloc and the encoded
 * response live until the instance is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwasm.h"
#include "internal.h"

/* ---- Small helpers ---------------------------------------------------------------------- */

int fwasm__utf8_valid(const uint8_t *p, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i - 1 < more) return 0;
        for (size_t k = 1; k <= more; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += more + 1;
    }
    return 1;
}

void fwasm__msg_bytes(fwasm__msg *m, const void *p, size_t len) {
    size_t room = FWASM__MSG_MAX - m->len;
    if (len > room) len = room;
    memcpy(m->text + m->len, p, len);
    m->len += len;
    m->text[m->len] = 0;
}

void fwasm__msg_str(fwasm__msg *m, const char *s) {
    fwasm__msg_bytes(m, s ? s : "(null)", strlen(s ? s : "(null)"));
}

void fwasm__msg_i64(fwasm__msg *m, int64_t v) {
    char digits[21];
    size_t n = sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) digits[--n] = '-';
    fwasm__msg_bytes(m, digits + n, sizeof digits - n);
}

void fwasm__msg_last_error(fwasm__msg *m) {
    char buf[512];
    int32_t total = fwasm_last_error(buf, sizeof buf);
    if (total > 0) {
        fwasm__msg_str(m, ": ");
        fwasm__msg_str(m, buf);
    }
}

/* fflush(NULL) flushes every stream that has been used; it does not link stdout or stderr
 * in by itself, so a function that never prints stays small. */
void fwasm__flush_stdio(void) {
    fflush(NULL);
}

const char *fwasm_status_name(int64_t status) {
    switch (status) {
    case FWASM_OUT_OF_BOUNDS: return "OutOfBounds";
    case FWASM_INVALID_UTF8: return "InvalidUtf8";
    case FWASM_INVALID_ARGUMENT: return "InvalidArgument";
    case FWASM_NOT_FOUND: return "NotFound";
    case FWASM_LIMIT_EXCEEDED: return "LimitExceeded";
    case FWASM_PERMISSION_DENIED: return "PermissionDenied";
    case FWASM_TIMEOUT: return "Timeout";
    case FWASM_UNAVAILABLE: return "Unavailable";
    default: return status >= 0 ? "Ok" : "unknown status";
    }
}

/* ---- Failing, logging --------------------------------------------------------------------- */

void fwasm_fail(const char *reason) {
    static const char not_utf8[] = "fwasm_fail: the reason given is not valid UTF-8";
    fwasm__flush_stdio();
    if (!reason) reason = "fwasm_fail called without a reason";
    if (fwasm_v1_fail(reason, strlen(reason)) == FWASM_INVALID_UTF8) {
        fwasm_v1_fail(not_utf8, sizeof not_utf8 - 1);
    }
    __builtin_trap();
}

int32_t fwasm_log(int32_t level, const char *text) {
    if (!text) return FWASM_INVALID_ARGUMENT;
    return fwasm_v1_log(level, text, strlen(text));
}

/* ---- Chaining ----------------------------------------------------------------------------- */

int64_t fwasm_chain(const char *name, const void *input, size_t input_len) {
    if (!name || (!input && input_len)) return FWASM_INVALID_ARGUMENT;
    return fwasm_v1_chain(name, strlen(name), input, input_len);
}

int32_t fwasm_publish(const char *topic, const void *data, size_t data_len) {
    if (!topic || (!data && data_len)) return FWASM_INVALID_ARGUMENT;
    return fwasm_v1_publish(topic, strlen(topic), data, data_len);
}

int32_t fwasm_await(int64_t call_id, int32_t timeout_ms) {
    return fwasm_v1_await(call_id, timeout_ms);
}

int64_t fwasm_call_output(int64_t call_id, void *buf, size_t buf_len) {
    if (!buf && buf_len) return FWASM_INVALID_ARGUMENT;
    return fwasm_v1_call_output(call_id, buf, buf_len);
}

int32_t fwasm_last_error(char *buf, size_t buf_len) {
    if (!buf && buf_len) return FWASM_INVALID_ARGUMENT;
    int32_t total = fwasm_v1_last_error(buf, buf_len ? buf_len - 1 : 0);
    if (total >= 0 && buf_len) buf[(size_t)total < buf_len - 1 ? (size_t)total : buf_len - 1] = 0;
    return total;
}

/* Reads something the host reports the full length of (a state value, an append list, a
 * call's output) into a malloc'd buffer, growing it until the whole thing fits. */
enum fetch_kind { FETCH_STATE, FETCH_APPENDED, FETCH_OUTPUT };

static int64_t fetch(enum fetch_kind kind, const char *key, size_t key_len, int64_t id,
                     void *buf, size_t len) {
    switch (kind) {
    case FETCH_STATE: return fwasm_v1_state_get(key, key_len, buf, len);
    case FETCH_APPENDED: return fwasm_v1_state_read_appended(key, key_len, buf, len);
    default: return fwasm_v1_call_output(id, buf, len);
    }
}

static int64_t fetch_alloc(enum fetch_kind kind, const char *key, int64_t id, uint8_t **out) {
    if (!out) return FWASM_INVALID_ARGUMENT;
    *out = NULL;
    if (kind != FETCH_OUTPUT && !key) return FWASM_INVALID_ARGUMENT;
    size_t key_len = key ? strlen(key) : 0;
    size_t cap = 1024;
    for (;;) {
        uint8_t *buf = malloc(cap + 1);
        if (!buf) return FWASM_LIMIT_EXCEEDED;
        int64_t n = fetch(kind, key, key_len, id, buf, cap);
        if (n >= 0 && (uint64_t)n <= cap) {
            buf[n] = 0;
            *out = buf;
            return n;
        }
        free(buf);
        if (n < 0) return n;
        /* Grew since we asked (a value other calls change): ask again with room for it. */
        if ((uint64_t)n >= SIZE_MAX) return FWASM_LIMIT_EXCEEDED;
        cap = (size_t)n;
    }
}

int64_t fwasm_call_output_alloc(int64_t call_id, uint8_t **out) {
    return fetch_alloc(FETCH_OUTPUT, NULL, call_id, out);
}

/* ---- State -------------------------------------------------------------------------------- */

#define KEY_OR_FAIL(key)                                \
    if (!(key)) return FWASM_INVALID_ARGUMENT;          \
    size_t key_len = strlen(key)
#define BUF_OR_FAIL(buf, len) \
    if (!(buf) && (len)) return FWASM_INVALID_ARGUMENT

int64_t fwasm_state_get(const char *key, void *buf, size_t buf_len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(buf, buf_len);
    return fwasm_v1_state_get(key, key_len, buf, buf_len);
}

int64_t fwasm_state_get_alloc(const char *key, uint8_t **out) {
    return fetch_alloc(FETCH_STATE, key, 0, out);
}

int64_t fwasm_state_get_offset(const char *key, int64_t offset, void *buf, size_t buf_len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(buf, buf_len);
    return fwasm_v1_state_get_offset(key, key_len, offset, buf, buf_len);
}

int64_t fwasm_state_size(const char *key) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_size(key, key_len);
}

int32_t fwasm_state_set(const char *key, const void *value, size_t len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(value, len);
    return fwasm_v1_state_set(key, key_len, value, len);
}

int32_t fwasm_state_set_offset(const char *key, int64_t offset, const void *value, size_t len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(value, len);
    return fwasm_v1_state_set_offset(key, key_len, offset, value, len);
}

int32_t fwasm_state_append(const char *key, const void *value, size_t len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(value, len);
    return fwasm_v1_state_append(key, key_len, value, len);
}

int64_t fwasm_state_read_appended(const char *key, void *buf, size_t buf_len) {
    KEY_OR_FAIL(key);
    BUF_OR_FAIL(buf, buf_len);
    return fwasm_v1_state_read_appended(key, key_len, buf, buf_len);
}

int64_t fwasm_state_read_appended_alloc(const char *key, uint8_t **out) {
    return fetch_alloc(FETCH_APPENDED, key, 0, out);
}

int32_t fwasm_state_clear_appended(const char *key) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_clear_appended(key, key_len);
}

int32_t fwasm_state_push(const char *key) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_push(key, key_len);
}

int32_t fwasm_state_pull(const char *key) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_pull(key, key_len);
}

int32_t fwasm_state_delete(const char *key) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_delete(key, key_len);
}

int32_t fwasm_state_lock(const char *key, int32_t mode) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_lock(key, key_len, mode);
}

int32_t fwasm_state_unlock(const char *key, int32_t mode) {
    KEY_OR_FAIL(key);
    return fwasm_v1_state_unlock(key, key_len, mode);
}

/* ---- The request -------------------------------------------------------------------------- */

typedef struct reader {
    uint8_t *buf;
    size_t len;
    size_t pos; /* next byte to read */
    size_t out; /* where the next string moves to (always <= pos) */
    fwasm__msg *err;
} reader;

static int take(reader *r, const char *field, uint64_t needed) {
    if (needed <= r->len - r->pos) return 0;
    fwasm__msg_str(r->err, "envelope truncated while reading ");
    fwasm__msg_str(r->err, field);
    fwasm__msg_str(r->err, ": needed ");
    fwasm__msg_i64(r->err, (int64_t)needed);
    fwasm__msg_str(r->err, " bytes, ");
    fwasm__msg_i64(r->err, (int64_t)(r->len - r->pos));
    fwasm__msg_str(r->err, " left");
    return -1;
}

static int read_u32(reader *r, const char *field, uint32_t *out) {
    if (take(r, field, 4)) return -1;
    *out = fwasm__le32(r->buf + r->pos);
    r->pos += 4;
    return 0;
}

/* A `str`: moved down over its own length prefix and NUL-terminated in place. Each string
 * has 4 bytes of prefix and needs 1 for the NUL, so the strings never overtake the reader. */
static int read_str(reader *r, const char *field, const char **out) {
    uint32_t n;
    if (read_u32(r, field, &n) || take(r, field, n)) return -1;
    if (!fwasm__utf8_valid(r->buf + r->pos, n)) {
        fwasm__msg_str(r->err, "envelope field ");
        fwasm__msg_str(r->err, field);
        fwasm__msg_str(r->err, " is not valid UTF-8");
        return -1;
    }
    char *dst = (char *)r->buf + r->out;
    memmove(dst, r->buf + r->pos, n);
    dst[n] = 0;
    r->out += (size_t)n + 1;
    r->pos += n;
    *out = dst;
    return 0;
}

/* Decodes `count` headers into a malloc'd array at *out. */
static int read_headers(reader *r, uint32_t count, const fwasm_header **out) {
    /* Each header takes at least 8 bytes, so count * 8 <= len and nothing overflows. */
    if (take(r, "header_count", (uint64_t)count * 8)) return -1;
    *out = NULL;
    if (!count) return 0;
    fwasm_header *headers = malloc((size_t)count * sizeof *headers);
    if (!headers) __builtin_trap(); /* out of memory */
    for (uint32_t i = 0; i < count; i++) {
        if (read_str(r, "header name", &headers[i].name) ||
            read_str(r, "header value", &headers[i].value)) {
            free(headers);
            return -1;
        }
    }
    *out = headers;
    return 0;
}

/* Decodes the request envelope at buf (len bytes; byte buf[len] is ours too if `spare`). */
static int decode_request(uint8_t *buf, size_t len, int spare, fwasm_request *req,
                          fwasm__msg *err) {
    reader r = {buf, len, 0, 0, err};
    memset(req, 0, sizeof *req);
    if (len == 0) {
        fwasm__msg_str(err, "envelope is empty");
        return -1;
    }
    if (buf[0] != 1) {
        fwasm__msg_str(err, "envelope version ");
        fwasm__msg_i64(err, buf[0]);
        fwasm__msg_str(err, " is not supported (expected 1)");
        return -1;
    }
    r.pos = 1;
    if (take(&r, "call_id", 8)) return -1;
    req->call_id = (uint64_t)fwasm__le32(buf + 1) | (uint64_t)fwasm__le32(buf + 5) << 32;
    r.pos = 9;
    if (read_str(&r, "user", &req->user) || read_str(&r, "function", &req->function) ||
        read_str(&r, "method", &req->method) || read_str(&r, "path", &req->path) ||
        read_str(&r, "query", &req->query)) {
        return -1;
    }
    uint32_t count;
    if (read_u32(&r, "header_count", &count) || read_headers(&r, count, &req->headers)) return -1;
    req->header_count = count;
    uint32_t body_len;
    if (read_u32(&r, "body", &body_len) || take(&r, "body", body_len)) return -1;
    uint8_t *body = buf + r.pos;
    r.pos += body_len;
    if (r.pos != len) {
        fwasm__msg_str(err, "envelope has ");
        fwasm__msg_i64(err, (int64_t)(len - r.pos));
        fwasm__msg_str(err, " unexpected trailing bytes");
        return -1;
    }
    if (!spare) {
        uint8_t *copy = malloc((size_t)body_len + 1);
        if (!copy) __builtin_trap();
        memcpy(copy, body, body_len);
        body = copy;
    }
    body[body_len] = 0;
    req->body = body;
    req->body_len = body_len;
    return 0;
}

static int ascii_lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* The value of the first of `count` headers called `name` (ASCII case-insensitive). */
static const char *find_header(const fwasm_header *headers, size_t count, const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < count; i++) {
        const char *a = headers[i].name, *b = name;
        while (*a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return headers[i].value;
    }
    return NULL;
}

const char *fwasm_request_header(const fwasm_request *req, const char *name) {
    return req ? find_header(req->headers, req->header_count, name) : NULL;
}

/* ---- The response ------------------------------------------------------------------------- */

typedef struct owned_header {
    char *name, *value;
    size_t name_len, value_len;
} owned_header;

struct fwasm_response {
    uint16_t status;
    owned_header *headers;
    size_t header_count, header_cap;
    uint8_t *body;
    size_t body_len, body_cap;
};

static fwasm_response response;

void fwasm_response_set_status(fwasm_response *res, uint16_t status) {
    res->status = status;
}

static char *copy_text(const char *s, size_t len) {
    char *copy = malloc(len + 1);
    if (copy) memcpy(copy, s, len + 1);
    return copy;
}

int32_t fwasm_response_add_header(fwasm_response *res, const char *name, const char *value) {
    if (!name || !value) return FWASM_INVALID_ARGUMENT;
    size_t name_len = strlen(name), value_len = strlen(value);
    if (!fwasm__utf8_valid((const uint8_t *)name, name_len) ||
        !fwasm__utf8_valid((const uint8_t *)value, value_len)) {
        return FWASM_INVALID_UTF8;
    }
    if (res->header_count == res->header_cap) {
        size_t cap = res->header_cap ? res->header_cap * 2 : 8;
        owned_header *grown = cap > SIZE_MAX / sizeof *grown
                                  ? NULL
                                  : realloc(res->headers, cap * sizeof *grown);
        if (!grown) return FWASM_LIMIT_EXCEEDED;
        res->headers = grown;
        res->header_cap = cap;
    }
    owned_header h = {copy_text(name, name_len), copy_text(value, value_len), name_len,
                      value_len};
    if (!h.name || !h.value) {
        free(h.name);
        free(h.value);
        return FWASM_LIMIT_EXCEEDED;
    }
    res->headers[res->header_count++] = h;
    return FWASM_OK;
}

/* Makes room for `extra` more body bytes. */
static int32_t reserve(fwasm_response *res, size_t extra) {
    if (extra > SIZE_MAX - res->body_len) return FWASM_LIMIT_EXCEEDED;
    size_t need = res->body_len + extra;
    if (need <= res->body_cap) return FWASM_OK;
    size_t cap = res->body_cap > SIZE_MAX / 2 ? SIZE_MAX : res->body_cap * 2;
    if (cap < need) cap = need;
    if (cap < 64) cap = 64;
    uint8_t *grown = realloc(res->body, cap);
    if (!grown) return FWASM_LIMIT_EXCEEDED;
    res->body = grown;
    res->body_cap = cap;
    return FWASM_OK;
}

int32_t fwasm_response_append(fwasm_response *res, const void *data, size_t len) {
    if (!data && len) return FWASM_INVALID_ARGUMENT;
    /* The data may be part of the body itself (say, from fwasm_response_body), which
     * growing it can move. */
    const uint8_t *p = data;
    int inside = res->body && p >= res->body && p < res->body + res->body_cap;
    size_t at = inside ? (size_t)(p - res->body) : 0;
    int32_t status = reserve(res, len);
    if (status) return status;
    if (inside) p = res->body + at;
    if (len) memmove(res->body + res->body_len, p, len);
    res->body_len += len;
    return FWASM_OK;
}

int32_t fwasm_response_set_body(fwasm_response *res, const void *data, size_t len) {
    if (!data && len) return FWASM_INVALID_ARGUMENT;
    res->body_len = 0;
    return fwasm_response_append(res, data, len);
}

int32_t fwasm_response_append_str(fwasm_response *res, const char *text) {
    if (!text) return FWASM_INVALID_ARGUMENT;
    return fwasm_response_append(res, text, strlen(text));
}

const uint8_t *fwasm_response_body(const fwasm_response *res, size_t *len) {
    if (len) *len = res->body_len;
    return res->body;
}

static void put32(uint8_t **p, size_t v) {
    (*p)[0] = (uint8_t)v, (*p)[1] = (uint8_t)(v >> 8), (*p)[2] = (uint8_t)(v >> 16),
    (*p)[3] = (uint8_t)(v >> 24);
    *p += 4;
}

/* Encodes the response envelope in place: the body buffer grows by the fixed fields and
 * headers, and the body moves up behind them. Returns (ptr << 32) | len. */
static int64_t encode_response(fwasm_response *res) {
    uint64_t prefix = 1 + 2 + 4 + 4;
    for (size_t i = 0; i < res->header_count; i++) {
        prefix += 8 + (uint64_t)res->headers[i].name_len + res->headers[i].value_len;
    }
    if (prefix + res->body_len > UINT32_MAX) __builtin_trap();
    size_t total = (size_t)prefix + res->body_len;
    uint8_t *out = realloc(res->body, total ? total : 1);
    if (!out) __builtin_trap(); /* out of memory: the host reports the refused growth */
    memmove(out + prefix, out, res->body_len);
    res->body = out;
    res->body_cap = total;
    uint8_t *p = out;
    *p++ = 1;
    *p++ = (uint8_t)res->status;
    *p++ = (uint8_t)(res->status >> 8);
    put32(&p, res->header_count);
    for (size_t i = 0; i < res->header_count; i++) {
        put32(&p, res->headers[i].name_len);
        memcpy(p, res->headers[i].name, res->headers[i].name_len);
        p += res->headers[i].name_len;
        put32(&p, res->headers[i].value_len);
        memcpy(p, res->headers[i].value, res->headers[i].value_len);
        p += res->headers[i].value_len;
    }
    put32(&p, res->body_len);
    return (int64_t)(((uint64_t)(uintptr_t)out << 32) | (uint64_t)total);
}

/* ---- The exports -------------------------------------------------------------------------- */

__attribute__((export_name("fwasm_abi_v1"))) void fwasm_abi_v1(void) {}

static uint8_t *alloc_ptr;
static uint32_t alloc_len;

/* One byte more than asked for, so that fwasm_handle can put a NUL after the body. */
__attribute__((export_name("fwasm_alloc"))) uint8_t *fwasm_alloc(uint32_t len) {
    if (len == UINT32_MAX) __builtin_trap();
    uint8_t *p = malloc((size_t)len + 1);
    if (!p) __builtin_trap(); /* out of memory: the host reports the refused growth */
    alloc_ptr = p;
    alloc_len = len;
    return p;
}

__attribute__((export_name("fwasm_handle"))) int64_t fwasm_handle(uint8_t *ptr, uint32_t len) {
    static fwasm__msg err;
    fwasm_request req;
    int spare = ptr == alloc_ptr && len <= alloc_len;
    if (decode_request(ptr, len, spare, &req, &err)) {
        fwasm__msg msg = {{0}, 0};
        fwasm__msg_str(&msg, "fwasm C SDK could not decode the request envelope: ");
        fwasm__msg_bytes(&msg, err.text, err.len);
        fwasm_fail(msg.text);
    }
    response.status = 200;
    fwasm_handle_request(&req, &response);
    fwasm__flush_stdio();
    return encode_response(&response);
}

/* ---- The sidecar --------------------------------------------------------------------------- */

/* The answer of a request that returned `len` (or a negative status), into *out. */
static int64_t sidecar_answer(int64_t len, uint8_t **out) {
    if (out) *out = NULL;
    if (len < 0 || !out) return len;
    if ((uint64_t)len >= SIZE_MAX) return FWASM_LIMIT_EXCEEDED;
    uint8_t *buf = malloc((size_t)len + 1);
    if (!buf) return FWASM_LIMIT_EXCEEDED;
    int64_t n = fwasm_sidecar_raw_answer(buf, (size_t)len);
    if (n < 0) {
        free(buf);
        return n;
    }
    buf[n < len ? n : len] = 0;
    *out = buf;
    return n < len ? n : len;
}

#define TEXTS_OR_FAIL(a, b)                                     \
    if (!(a) || !(b)) return FWASM_INVALID_ARGUMENT;             \
    size_t a##_len = strlen(a), b##_len = strlen(b)

int64_t fwasm_sidecar_get_state(const char *store, const char *key, uint8_t **out) {
    TEXTS_OR_FAIL(store, key);
    return sidecar_answer(fwasm_sidecar_raw_get_state(store, store_len, key, key_len), out);
}

int32_t fwasm_sidecar_save_state(const char *store, const char *key, const void *value,
                                 size_t value_len) {
    TEXTS_OR_FAIL(store, key);
    BUF_OR_FAIL(value, value_len);
    return fwasm_sidecar_raw_save_state(store, store_len, key, key_len, value, value_len);
}

int32_t fwasm_sidecar_delete_state(const char *store, const char *key) {
    TEXTS_OR_FAIL(store, key);
    return fwasm_sidecar_raw_delete_state(store, store_len, key, key_len);
}

int64_t fwasm_sidecar_invoke(const char *app, const char *method, const void *data,
                             size_t data_len, uint8_t **out) {
    TEXTS_OR_FAIL(app, method);
    BUF_OR_FAIL(data, data_len);
    int64_t len = fwasm_sidecar_raw_invoke(app, app_len, method, method_len, data, data_len);
    return sidecar_answer(len, out);
}

int32_t fwasm_sidecar_publish(const char *pubsub, const char *topic, const void *data,
                              size_t data_len) {
    TEXTS_OR_FAIL(pubsub, topic);
    BUF_OR_FAIL(data, data_len);
    return fwasm_sidecar_raw_publish(pubsub, pubsub_len, topic, topic_len, data, data_len);
}

int64_t fwasm_sidecar_invoke_binding(const char *name, const char *operation, const void *data,
                                     size_t data_len, uint8_t **out) {
    TEXTS_OR_FAIL(name, operation);
    BUF_OR_FAIL(data, data_len);
    int64_t len = fwasm_sidecar_raw_invoke_binding(name, name_len, operation, operation_len,
                                                   data, data_len);
    return sidecar_answer(len, out);
}

int64_t fwasm_sidecar_get_secret(const char *store, const char *key, uint8_t **out) {
    TEXTS_OR_FAIL(store, key);
    return sidecar_answer(fwasm_sidecar_raw_get_secret(store, store_len, key, key_len), out);
}

/* ---- Outbound HTTP ------------------------------------------------------------------------- */

static size_t text_len(const char *s) {
    return s ? strlen(s) : 0;
}

static void put_bytes(uint8_t **p, const void *data, size_t len) {
    put32(p, len);
    if (len) memcpy(*p, data, len);
    *p += len;
}

/* The request envelope (ABI section 6) for an outbound request, in a malloc'd buffer. */
static uint8_t *encode_outbound(const char *method, const char *url, const fwasm_header *headers,
                                size_t header_count, const void *body, size_t body_len,
                                size_t *len) {
    uint64_t total = 1 + 8 + 5 * 4 + 4 + 4 + (uint64_t)strlen(method) + strlen(url) + body_len;
    for (size_t i = 0; i < header_count; i++) {
        total += 8 + (uint64_t)text_len(headers[i].name) + text_len(headers[i].value);
    }
    if (total > UINT32_MAX) return NULL;
    uint8_t *out = malloc((size_t)total), *p = out;
    if (!out) return NULL;
    *p++ = 1;
    memset(p, 0, 8); /* call_id: not read */
    p += 8;
    put_bytes(&p, "", 0); /* user */
    put_bytes(&p, "", 0); /* function */
    put_bytes(&p, method, strlen(method));
    put_bytes(&p, url, strlen(url)); /* the whole URL as the path */
    put_bytes(&p, "", 0);            /* query: in the URL */
    put32(&p, header_count);
    for (size_t i = 0; i < header_count; i++) {
        put_bytes(&p, headers[i].name, text_len(headers[i].name));
        put_bytes(&p, headers[i].value, text_len(headers[i].value));
    }
    put_bytes(&p, body, body_len);
    *len = (size_t)total;
    return out;
}

/* Decodes the response envelope at buf (len bytes, and one spare for the body's NUL). */
static int decode_outbound(uint8_t *buf, size_t len, fwasm_http_response *res) {
    fwasm__msg err = {{0}, 0};
    reader r = {buf, len, 0, 0, &err};
    if (len < 7 || buf[0] != 1) return -1;
    res->status = (uint16_t)(buf[1] | buf[2] << 8);
    r.pos = 3;
    uint32_t count, body_len;
    if (read_u32(&r, "header_count", &count) || read_headers(&r, count, &res->headers)) {
        memset(res, 0, sizeof *res);
        return -1;
    }
    res->header_count = count;
    if (read_u32(&r, "body", &body_len) || take(&r, "body", body_len) ||
        r.pos + body_len != len) {
        free((void *)res->headers);
        memset(res, 0, sizeof *res);
        return -1;
    }
    buf[len] = 0;
    res->body = buf + r.pos;
    res->body_len = body_len;
    res->fwasm__memory = buf;
    return 0;
}

int32_t fwasm_http_request(const char *method, const char *url, const fwasm_header *headers,
                           size_t header_count, const void *body, size_t body_len,
                           fwasm_http_response *res) {
    if (!method || !url || !res || (header_count && !headers)) return FWASM_INVALID_ARGUMENT;
    BUF_OR_FAIL(body, body_len);
    memset(res, 0, sizeof *res);
    size_t request_len;
    uint8_t *request = encode_outbound(method, url, headers, header_count, body, body_len,
                                       &request_len);
    if (!request) return FWASM_LIMIT_EXCEEDED;
    int64_t len = fwasm_http_raw_send(request, request_len);
    free(request);
    if (len < 0) return (int32_t)len;
    if ((uint64_t)len >= SIZE_MAX) return FWASM_LIMIT_EXCEEDED;
    uint8_t *answer = malloc((size_t)len + 1);
    if (!answer) return FWASM_LIMIT_EXCEEDED;
    int64_t copied = fwasm_http_raw_answer(answer, (size_t)len);
    if (copied != len || decode_outbound(answer, (size_t)len, res)) {
        free(answer);
        return copied < 0 ? (int32_t)copied : FWASM_INVALID_ARGUMENT;
    }
    return FWASM_OK;
}

const char *fwasm_http_response_header(const fwasm_http_response *res, const char *name) {
    return res ? find_header(res->headers, res->header_count, name) : NULL;
}

void fwasm_http_response_free(fwasm_http_response *res) {
    if (!res) return;
    free((void *)res->headers);
    free(res->fwasm__memory);
    memset(res, 0, sizeof *res);
}
