/*
 * fwasm.h: write fwasm functions in C or C++ (function-wasm ABI v1, see abi/ABI.md).
 *
 *     #include <fwasm.h>
 *
 *     FWASM_HANDLER(req, res) {
 *         fwasm_response_append_str(res, "Hello, ");
 *         fwasm_response_append(res, req->body, req->body_len);
 *     }
 *
 * Build with `fwasm build hello.c -o hello.wasm`. The SDK (src/fwasm.c) provides the exports
 * the host calls (`fwasm_abi_v1`, `fwasm_alloc`, `fwasm_handle`): it decodes the request,
 * calls your `fwasm_handle_request` and encodes what it put in the response (status 200 unless
 * it says otherwise). Each call runs in a fresh instance, so globals start afresh for every
 * call and nothing needs freeing.
 *
 * Functions returning `int32_t` or `int64_t` give a negative FWASM_* status code on error
 * (section 4 of the ABI); `fwasm_last_error` explains the most recent one.
 */
#ifndef FWASM_H
#define FWASM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes a host import returns (ABI section 4) ---------------------------------- */

#define FWASM_OK 0
#define FWASM_OUT_OF_BOUNDS (-1)
#define FWASM_INVALID_UTF8 (-2)
#define FWASM_INVALID_ARGUMENT (-3)
#define FWASM_NOT_FOUND (-4)
#define FWASM_LIMIT_EXCEEDED (-5) /* also: the SDK could not allocate memory */
#define FWASM_PERMISSION_DENIED (-6)
#define FWASM_TIMEOUT (-7)
#define FWASM_UNAVAILABLE (-8)

/* The name of a status code, e.g. "NotFound" for -4 ("Ok" for 0 and positive values). */
const char *fwasm_status_name(int64_t status);

/* ---- Return codes of a finished call, as fwasm_await gives them (ABI section 3) ------------ */

#define FWASM_RC_SUCCESS 0
#define FWASM_RC_TRAP 1
#define FWASM_RC_CPU_LIMIT 2
#define FWASM_RC_TIMEOUT 3
#define FWASM_RC_MEMORY_LIMIT 4
#define FWASM_RC_OUTPUT_LIMIT 5
#define FWASM_RC_ABI_VIOLATION 6
#define FWASM_RC_NOT_RUN 7

/* ---- The request ------------------------------------------------------------------------ */

typedef struct fwasm_header {
    const char *name;  /* NUL-terminated UTF-8 */
    const char *value; /* NUL-terminated UTF-8 */
} fwasm_header;

/* Valid during fwasm_handle_request. Every string is NUL-terminated UTF-8. */
typedef struct fwasm_request {
    uint64_t call_id;       /* this call's id (> 0) */
    const char *user;       /* owner of the function */
    const char *function;   /* function name */
    const char *method;     /* e.g. "POST" */
    const char *path;       /* e.g. "/f/demo/echo" */
    const char *query;      /* without '?', may be "" */
    const fwasm_header *headers; /* in order; names may repeat */
    size_t header_count;
    const uint8_t *body;    /* the call's input: any bytes, followed by a NUL byte so that */
    size_t body_len;        /* a text body can be used as a C string */
} fwasm_request;

/* The first header called `name` (ASCII case-insensitive), or NULL. */
const char *fwasm_request_header(const fwasm_request *req, const char *name);

/* ---- The response ----------------------------------------------------------------------- */

typedef struct fwasm_response fwasm_response; /* opaque; starts as status 200, no body */

void fwasm_response_set_status(fwasm_response *res, uint16_t status);
/* Adds a header (copied). FWASM_INVALID_UTF8 if either string is not UTF-8. */
int32_t fwasm_response_add_header(fwasm_response *res, const char *name, const char *value);
/* Replaces the body with a copy of `len` bytes. */
int32_t fwasm_response_set_body(fwasm_response *res, const void *data, size_t len);
/* Appends `len` bytes, or a C string, or formatted text to the body. */
int32_t fwasm_response_append(fwasm_response *res, const void *data, size_t len);
int32_t fwasm_response_append_str(fwasm_response *res, const char *text);
static inline int32_t fwasm_response_printf(fwasm_response *res, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The body so far (not NUL-terminated); `len` may be NULL. */
const uint8_t *fwasm_response_body(const fwasm_response *res, size_t *len);

/* ---- Your function ---------------------------------------------------------------------- */

/* Define this (or use FWASM_HANDLER): called once per call. */
void fwasm_handle_request(const fwasm_request *req, fwasm_response *res);

#define FWASM_HANDLER(req, res) \
    void fwasm_handle_request(const fwasm_request *req, fwasm_response *res)

/* Optional: `FWASM_INIT() { ... }` runs once per executor, before the first call, and every
 * call starts from the memory it leaves (tables built, files parsed, interpreters started).
 * It may log and use clocks and random numbers, but not chain, publish or read global state;
 * if it fails (fwasm_fail, a trap), every call fails saying why. */
#define FWASM_INIT() __attribute__((export_name("fwasm_init"))) void fwasm_init(void)

/* Fails the call: `reason` becomes its error ("USER/NAME failed: REASON") and the call's
 * return code is 1 (Trap). Does not return. */
__attribute__((noreturn)) void fwasm_fail(const char *reason);
static inline __attribute__((noreturn, format(printf, 1, 2))) void fwasm_failf(
    const char *format, ...);

/* ---- Logging: one line each in the call's trace ------------------------------------------ */

#define FWASM_LOG_ERROR 1
#define FWASM_LOG_WARN 2
#define FWASM_LOG_INFO 3
#define FWASM_LOG_DEBUG 4
#define FWASM_LOG_TRACE 5

/* `text` must be UTF-8; more than 16 KiB is cut. Returns a status code. */
int32_t fwasm_log(int32_t level, const char *text);
static inline int32_t fwasm_logf(int32_t level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
#define fwasm_log_error(...) fwasm_logf(FWASM_LOG_ERROR, __VA_ARGS__)
#define fwasm_log_warn(...) fwasm_logf(FWASM_LOG_WARN, __VA_ARGS__)
#define fwasm_log_info(...) fwasm_logf(FWASM_LOG_INFO, __VA_ARGS__)
#define fwasm_log_debug(...) fwasm_logf(FWASM_LOG_DEBUG, __VA_ARGS__)
#define fwasm_log_trace(...) fwasm_logf(FWASM_LOG_TRACE, __VA_ARGS__)

/* ---- Chaining: calls of the same user's functions (ABI section 3) ------------------------ */

#define FWASM_WAIT_FOREVER (-1) /* as long as this call's own time limit allows */

/* Starts `name` (a function of the same user) with `input`. The new call's id (> 0), or a
 * negative status (e.g. FWASM_NOT_FOUND: no such function). Does not wait for it. */
int64_t fwasm_chain(const char *name, const void *input, size_t input_len);
/* Waits for a call to end: 0 if it succeeded, its return code (FWASM_RC_*) if it failed, or
 * FWASM_TIMEOUT after `timeout_ms` (0 only checks), FWASM_NOT_FOUND for an unknown id. */
int32_t fwasm_await(int64_t call_id, int32_t timeout_ms);
/* After fwasm_await gave 0 or a return code: the call's output (or failure message). Copies
 * up to `buf_len` bytes and returns the full length. */
int64_t fwasm_call_output(int64_t call_id, void *buf, size_t buf_len);
/* The same into a malloc'd buffer (NUL-terminated; free it, or don't: the instance ends with
 * the call). Returns the length, or a negative status and *out = NULL. */
int64_t fwasm_call_output_alloc(int64_t call_id, uint8_t **out);
/* The message for the most recent negative status any import returned to this call, as a
 * NUL-terminated string cut to fit `buf_len` bytes. Returns its full length (0: none). */
int32_t fwasm_last_error(char *buf, size_t buf_len);

/* ---- State: values by key, shared by the user's calls (ABI section 3) -------------------- */
/* Keys are NUL-terminated UTF-8, 1 to 256 bytes. Reads and writes use this executor's local
 * copy; push publishes it to the global tier and pull refreshes it from there. */

#define FWASM_LOCK_READ 1         /* local, shared */
#define FWASM_LOCK_WRITE 2        /* local, exclusive */
#define FWASM_LOCK_GLOBAL_READ 3  /* all executors, shared */
#define FWASM_LOCK_GLOBAL_WRITE 4 /* all executors, exclusive */

/* Copies up to `buf_len` bytes of the value; returns its full size (0 for a missing key). */
int64_t fwasm_state_get(const char *key, void *buf, size_t buf_len);
/* The whole value in a malloc'd buffer (with a NUL after it); returns its size. */
int64_t fwasm_state_get_alloc(const char *key, uint8_t **out);
/* Copies exactly `buf_len` bytes at `offset`; FWASM_INVALID_ARGUMENT if past the end. */
int64_t fwasm_state_get_offset(const char *key, int64_t offset, void *buf, size_t buf_len);
/* The value's size, without pulling. */
int64_t fwasm_state_size(const char *key);
/* Replaces the local copy. */
int32_t fwasm_state_set(const char *key, const void *value, size_t len);
/* Writes at `offset`, growing the value with zeros if needed. */
int32_t fwasm_state_set_offset(const char *key, int64_t offset, const void *value, size_t len);
/* The key's append list (global tier only): add an element, read all, clear. */
int32_t fwasm_state_append(const char *key, const void *value, size_t len);
/* Encoded as the elements in order, each a u32 little-endian length and its bytes. */
int64_t fwasm_state_read_appended(const char *key, void *buf, size_t buf_len);
int64_t fwasm_state_read_appended_alloc(const char *key, uint8_t **out);
int32_t fwasm_state_clear_appended(const char *key);
int32_t fwasm_state_push(const char *key);
int32_t fwasm_state_pull(const char *key);
int32_t fwasm_state_delete(const char *key);
/* Waits for the lock (mode FWASM_LOCK_*); every lock is released when the call ends. */
int32_t fwasm_state_lock(const char *key, int32_t mode);
int32_t fwasm_state_unlock(const char *key, int32_t mode);

/* ---- Publish and subscribe ----------------------------------------------------------------- */

/* Publishes `data` on `topic` of this function's user: every function subscribed to it
 * (`fwasm subscribe`) is called in the background with the event in a CloudEvents JSON
 * envelope. Returns how many functions it started (>= 0), or a negative status
 * (FWASM_INVALID_ARGUMENT: not a topic name; FWASM_LIMIT_EXCEEDED: past this call's chaining
 * limits, which the started calls count against). */
int32_t fwasm_publish(const char *topic, const void *data, size_t data_len);

/* ---- The sidecar beside the executor (ABI.md section 12) ----------------------------------- */
/* Requests to the Layotto or Dapr sidecar the executor runs with (`--sidecar ADDR
 * --sidecar-api layotto|dapr`), sent verbatim in its API. Strings are NUL-terminated UTF-8.
 * Each waits for the answer (the call holds no thread meanwhile) and returns 0 or, for
 * requests that answer bytes, their length, with the bytes in a malloc'd NUL-terminated buffer
 * at *out (pass NULL to drop them); or a negative status: FWASM_UNAVAILABLE (no sidecar, or
 * unreachable), FWASM_TIMEOUT (too slow for this call's time), FWASM_NOT_FOUND, ...; then
 * fwasm_last_error says why. */
int64_t fwasm_sidecar_get_state(const char *store, const char *key, uint8_t **out);
int32_t fwasm_sidecar_save_state(const char *store, const char *key, const void *value,
                                 size_t value_len);
int32_t fwasm_sidecar_delete_state(const char *store, const char *key);
int64_t fwasm_sidecar_invoke(const char *app, const char *method, const void *data,
                             size_t data_len, uint8_t **out);
int32_t fwasm_sidecar_publish(const char *pubsub, const char *topic, const void *data,
                              size_t data_len);
int64_t fwasm_sidecar_invoke_binding(const char *name, const char *operation, const void *data,
                                     size_t data_len, uint8_t **out);
int64_t fwasm_sidecar_get_secret(const char *store, const char *key, uint8_t **out);

/* ---- Outbound HTTP (ABI.md section 13) ----------------------------------------------------- */
/* Requests to the hosts this function is allowed (`fwasm upload --allow-host HOST:PORT`, within
 * the platform's `--allow-outbound`); http and https URLs, https verified against the system's
 * trust roots. Each waits for the answer (the call holds no thread meanwhile). */

typedef struct fwasm_http_response {
    uint16_t status;
    const fwasm_header *headers; /* in order; names may repeat (lowercase) */
    size_t header_count;
    const uint8_t *body; /* followed by a NUL byte, so a text body is a C string */
    size_t body_len;
    void *fwasm__memory; /* what fwasm_http_response_free frees */
} fwasm_http_response;

/* Sends `method` (e.g. "GET") to `url` with `header_count` headers (NULL if none) and `body`
 * (NULL if `body_len` is 0). 0 with *res filled in, or a negative status:
 * FWASM_PERMISSION_DENIED (a host this function may not reach), FWASM_TIMEOUT (too slow for
 * this call's time), FWASM_UNAVAILABLE (the connection failed), FWASM_INVALID_ARGUMENT (not
 * a URL, a header the host sets itself), FWASM_LIMIT_EXCEEDED; fwasm_last_error says why. A
 * server's error status (404, 500) is an answer, not a failure. */
int32_t fwasm_http_request(const char *method, const char *url, const fwasm_header *headers,
                           size_t header_count, const void *body, size_t body_len,
                           fwasm_http_response *res);
/* The first header of the response called `name` (ASCII case-insensitive), or NULL. */
const char *fwasm_http_response_header(const fwasm_http_response *res, const char *name);
/* Frees what the response holds (or leave it: the instance ends with the call). */
void fwasm_http_response_free(fwasm_http_response *res);

/* ---- The raw host imports (module fwasm_v1), exactly as ABI.md section 3 lists them ------- */

#define FWASM_IMPORT(name) __attribute__((import_module("fwasm_v1"), import_name(name)))

FWASM_IMPORT("log") int32_t fwasm_v1_log(int32_t level, const void *ptr, size_t len);
FWASM_IMPORT("fail") int32_t fwasm_v1_fail(const void *ptr, size_t len);
FWASM_IMPORT("chain") int64_t fwasm_v1_chain(const void *name, size_t name_len,
                                             const void *input, size_t input_len);
FWASM_IMPORT("publish") int32_t fwasm_v1_publish(const void *topic, size_t topic_len,
                                                 const void *data, size_t data_len);
FWASM_IMPORT("await") int32_t fwasm_v1_await(int64_t call_id, int32_t timeout_ms);
FWASM_IMPORT("call_output") int64_t fwasm_v1_call_output(int64_t call_id, void *buf,
                                                         size_t buf_len);
FWASM_IMPORT("last_error") int32_t fwasm_v1_last_error(void *buf, size_t buf_len);
FWASM_IMPORT("state_get") int64_t fwasm_v1_state_get(const void *key, size_t key_len,
                                                     void *buf, size_t buf_len);
FWASM_IMPORT("state_get_offset") int64_t fwasm_v1_state_get_offset(const void *key,
                                                                   size_t key_len,
                                                                   int64_t offset, void *buf,
                                                                   size_t buf_len);
FWASM_IMPORT("state_size") int64_t fwasm_v1_state_size(const void *key, size_t key_len);
FWASM_IMPORT("state_set") int32_t fwasm_v1_state_set(const void *key, size_t key_len,
                                                     const void *val, size_t val_len);
FWASM_IMPORT("state_set_offset") int32_t fwasm_v1_state_set_offset(const void *key,
                                                                   size_t key_len,
                                                                   int64_t offset,
                                                                   const void *val,
                                                                   size_t val_len);
FWASM_IMPORT("state_append") int32_t fwasm_v1_state_append(const void *key, size_t key_len,
                                                           const void *val, size_t val_len);
FWASM_IMPORT("state_read_appended") int64_t fwasm_v1_state_read_appended(const void *key,
                                                                         size_t key_len,
                                                                         void *buf,
                                                                         size_t buf_len);
FWASM_IMPORT("state_clear_appended") int32_t fwasm_v1_state_clear_appended(const void *key,
                                                                           size_t key_len);
FWASM_IMPORT("state_push") int32_t fwasm_v1_state_push(const void *key, size_t key_len);
FWASM_IMPORT("state_pull") int32_t fwasm_v1_state_pull(const void *key, size_t key_len);
FWASM_IMPORT("state_delete") int32_t fwasm_v1_state_delete(const void *key, size_t key_len);
FWASM_IMPORT("state_lock") int32_t fwasm_v1_state_lock(const void *key, size_t key_len,
                                                       int32_t mode);
FWASM_IMPORT("state_unlock") int32_t fwasm_v1_state_unlock(const void *key, size_t key_len,
                                                           int32_t mode);

#undef FWASM_IMPORT

/* ---- The raw sidecar imports (module fwasm_sidecar), as ABI.md section 12 lists them ------ */

#define FWASM_SIDECAR(name) __attribute__((import_module("fwasm_sidecar"), import_name(name)))

FWASM_SIDECAR("get_state") int64_t fwasm_sidecar_raw_get_state(const void *store,
                                                               size_t store_len,
                                                               const void *key, size_t key_len);
FWASM_SIDECAR("save_state") int32_t fwasm_sidecar_raw_save_state(const void *store,
                                                                 size_t store_len,
                                                                 const void *key, size_t key_len,
                                                                 const void *value,
                                                                 size_t value_len);
FWASM_SIDECAR("delete_state") int32_t fwasm_sidecar_raw_delete_state(const void *store,
                                                                     size_t store_len,
                                                                     const void *key,
                                                                     size_t key_len);
FWASM_SIDECAR("invoke") int64_t fwasm_sidecar_raw_invoke(const void *app, size_t app_len,
                                                         const void *method, size_t method_len,
                                                         const void *data, size_t data_len);
FWASM_SIDECAR("publish") int32_t fwasm_sidecar_raw_publish(const void *pubsub,
                                                           size_t pubsub_len,
                                                           const void *topic, size_t topic_len,
                                                           const void *data, size_t data_len);
FWASM_SIDECAR("invoke_binding") int64_t fwasm_sidecar_raw_invoke_binding(
    const void *name, size_t name_len, const void *operation, size_t operation_len,
    const void *data, size_t data_len);
FWASM_SIDECAR("get_secret") int64_t fwasm_sidecar_raw_get_secret(const void *store,
                                                                 size_t store_len,
                                                                 const void *key,
                                                                 size_t key_len);
FWASM_SIDECAR("answer") int64_t fwasm_sidecar_raw_answer(void *buf, size_t buf_len);

#undef FWASM_SIDECAR

/* ---- The raw outbound HTTP imports (module fwasm_http), as ABI.md section 13 lists them ---- */

#define FWASM_HTTP(name) __attribute__((import_module("fwasm_http"), import_name(name)))

FWASM_HTTP("send") int64_t fwasm_http_raw_send(const void *request, size_t request_len);
FWASM_HTTP("answer") int64_t fwasm_http_raw_answer(void *buf, size_t buf_len);

#undef FWASM_HTTP

/* ---- The printf-style functions, inline so that only functions using them link printf ---- */

/* vsnprintf into `stack` (`size` bytes), or into a malloc'd buffer if the text is longer. */
static inline char *fwasm__vformat(char *stack, size_t size, const char *format, va_list args) {
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(stack, size, format, args);
    char *text = n < 0 ? NULL : stack;
    if (n >= 0 && (size_t)n >= size) {
        text = (char *)malloc((size_t)n + 1);
        if (text) vsnprintf(text, (size_t)n + 1, format, again);
    }
    va_end(again);
    return text;
}

static inline int32_t fwasm_response_printf(fwasm_response *res, const char *format, ...) {
    char stack[512];
    va_list args;
    va_start(args, format);
    char *text = fwasm__vformat(stack, sizeof stack, format, args);
    va_end(args);
    if (!text) return FWASM_INVALID_ARGUMENT;
    int32_t status = fwasm_response_append_str(res, text);
    if (text != stack) free(text);
    return status;
}

static inline void fwasm_failf(const char *format, ...) {
    char stack[512];
    va_list args;
    va_start(args, format);
    char *text = fwasm__vformat(stack, sizeof stack, format, args);
    va_end(args);
    fwasm_fail(text ? text : format);
}

static inline int32_t fwasm_logf(int32_t level, const char *format, ...) {
    char stack[512];
    va_list args;
    va_start(args, format);
    char *text = fwasm__vformat(stack, sizeof stack, format, args);
    va_end(args);
    if (!text) return FWASM_INVALID_ARGUMENT;
    int32_t status = fwasm_log(level, text);
    if (text != stack) free(text);
    return status;
}

#ifdef __cplusplus
}
#endif

#endif /* FWASM_H */
