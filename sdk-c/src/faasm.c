/*
 * Faasm's C API (faasm/core.h) implemented on fwasm's ABI. Linked, together with fwasm.c,
 * into a function whose sources define main (Faasm's entry point). It supplies fwasm_handle_request:
 * the request body is the Faasm input, main() (or a function chained by pointer) runs, and
 * the Faasm output becomes the response body; a non-zero return value fails the call with
 * that return code. How each function maps onto the ABI is in sdk-c/README.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faasm/core.h"
#include "fwasm.h"
#include "internal.h"

/* Marker: "this module uses the Faasm C API". Never called. */
__attribute__((export_name("fwasm_faasm_api"))) void fwasm_faasm_api(void) {}

/* wasi-libc's entry into main(): clang names `int main(void)` __main_void, and the
 * `int main(int, char **)` form __main_argc_argv, which libc's __main_void calls with argv. */
extern int __main_void(void);

/*
 * faasmChain(f, input) chains this same function with the input prefixed by 18 bytes:
 *   FF 00 'f' 'w' 'a' 's' 'm' '-' 'f' 'n' 'p' 't' 'r' 00   (14 bytes of magic)
 *   the table index of f, u32 little-endian                   (4 bytes)
 * The callee sees the marker, strips it, and calls f instead of main. 0xFF never occurs in
 * UTF-8 text, so no text input (and no JSON input_data) can start with it.
 */
static const uint8_t FNPTR_MAGIC[14] = {0xFF, 0x00, 'f', 'w', 'a', 's', 'm',
                                        '-',  'f',  'n', 'p', 't', 'r', 0x00};
#define FNPTR_HEADER_LEN 18

static const fwasm_request *request;
static fwasm_response *response;
static const uint8_t *input;
static size_t input_len;

/* ---- Failing ------------------------------------------------------------------------------ */

__attribute__((noreturn)) static void out_of_memory(void) {
    /* Trapping without a reason lets the host report the refused memory growth. */
    __builtin_trap();
}

static void msg_key(fwasm__msg *m, const char *op, const char *key) {
    fwasm__msg_str(m, op);
    fwasm__msg_str(m, "(\"");
    if (key && fwasm__utf8_valid((const uint8_t *)key, strlen(key))) fwasm__msg_str(m, key);
    fwasm__msg_str(m, "\")");
}

/* Faasm raises an error where fwasm returns a status: fail the call, saying why. */
static void check(int64_t status, const char *op, const char *key) {
    if (status >= 0) return;
    fwasm__msg m = {{0}, 0};
    msg_key(&m, op, key);
    fwasm__msg_str(&m, " failed: ");
    fwasm__msg_str(&m, fwasm_status_name(status));
    fwasm__msg_last_error(&m);
    fwasm_fail(m.text);
}

__attribute__((noreturn)) static void fail_op(const char *op, const char *key,
                                               const char *why) {
    fwasm__msg m = {{0}, 0};
    msg_key(&m, op, key);
    fwasm__msg_str(&m, ": ");
    fwasm__msg_str(&m, why);
    fwasm_fail(m.text);
}

static size_t key_len(const char *op, const char *key) {
    if (!key) fail_op(op, key, "the key is NULL");
    return strlen(key);
}

/* A negative length or a NULL buffer with a length is a bug in the caller: fail the call. */
static size_t length(const char *op, const char *key, const void *buf, long len) {
    if (len < 0) fail_op(op, key, "negative length");
    if (!buf && len) fail_op(op, key, "NULL buffer");
    return (size_t)len;
}

/* ---- Input and output --------------------------------------------------------------------- */

long faasmGetInputSize(void) {
    return (long)input_len;
}

void faasmGetInput(uint8_t *buffer, long bufferLen) {
    if (!buffer || bufferLen <= 0) return;
    size_t n = (size_t)bufferLen < input_len ? (size_t)bufferLen : input_len;
    memcpy(buffer, input, n);
}

void faasmSetOutput(const uint8_t *newOutput, long outputLen) {
    if (!response) return;
    if (!newOutput || outputLen < 0) outputLen = 0;
    if (fwasm_response_set_body(response, newOutput, (size_t)outputLen)) out_of_memory();
}

const char *fwasm_faasm_string_input(const char *defaultValue) {
    /* The SDK keeps a NUL after the request body, and the input ends where the body does. */
    return input_len ? (const char *)input : defaultValue;
}

unsigned int getConfFlag(const char *key) {
    /* Faasm's own flags first; then the function's environment (its upload's settings). */
    if (key && strcmp(key, "ALWAYS_ON") == 0) return 1;
    if (key && strcmp(key, "ALWAYS_OFF") == 0) return 0;
    const char *value = key ? getenv(key) : NULL;
    if (!value) return 0;
    return strcmp(value, "on") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0;
}

/* ---- Chaining ----------------------------------------------------------------------------- */

/* Faasm call ids are unsigned ints local to this call: index + 1 in this table. */
typedef struct faasm_call {
    int64_t id;      /* the fwasm call id, or the negative status chain refused it with */
    int64_t result;  /* -1 until awaited, then the Faasm result */
    int has_output;  /* fwasm_v1.call_output works for it */
    char *message;   /* why it was refused or could not be awaited */
} faasm_call;

static faasm_call *calls;
static size_t call_count, call_cap;

static char *copy_msg(const fwasm__msg *m) {
    char *text = malloc(m->len + 1);
    if (!text) out_of_memory();
    memcpy(text, m->text, m->len + 1);
    return text;
}

static unsigned int add_call(int64_t id, const char *op, const char *name) {
    if (call_count == call_cap) {
        size_t cap = call_cap ? call_cap * 2 : 16;
        faasm_call *grown = realloc(calls, cap * sizeof *grown);
        if (!grown) out_of_memory();
        calls = grown;
        call_cap = cap;
    }
    faasm_call c = {id, -1, 0, NULL};
    if (id < 0) {
        fwasm__msg m = {{0}, 0};
        msg_key(&m, op, name);
        fwasm__msg_str(&m, " was refused: ");
        fwasm__msg_str(&m, fwasm_status_name(id));
        fwasm__msg_last_error(&m);
        c.message = copy_msg(&m);
        fwasm_log(FWASM_LOG_WARN, c.message);
    }
    calls[call_count++] = c;
    return (unsigned int)call_count;
}

static faasm_call *find_call(unsigned int callId) {
    return callId >= 1 && callId <= call_count ? &calls[callId - 1] : NULL;
}

unsigned int faasmChainNamed(const char *name, const uint8_t *inputData, long inputDataSize) {
    size_t len = length("faasmChainNamed", name, inputData, inputDataSize);
    if (!name) fail_op("faasmChainNamed", name, "the function name is NULL");
    int64_t id = fwasm_v1_chain(name, strlen(name), inputData, len);
    return add_call(id, "faasmChainNamed", name);
}

unsigned int faasmChain(FaasmFuncPtr funcPtr, const uint8_t *inputData, long inputDataSize) {
    const char *name = request ? request->function : "";
    size_t len = length("faasmChain", name, inputData, inputDataSize);
    uint32_t index = (uint32_t)(uintptr_t)funcPtr;
    if (!index) fail_op("faasmChain", name, "the function pointer is NULL");
    if (len > SIZE_MAX - FNPTR_HEADER_LEN) out_of_memory();
    uint8_t *chained = malloc(FNPTR_HEADER_LEN + len);
    if (!chained) out_of_memory();
    memcpy(chained, FNPTR_MAGIC, sizeof FNPTR_MAGIC);
    for (int i = 0; i < 4; i++) chained[sizeof FNPTR_MAGIC + i] = (uint8_t)(index >> (8 * i));
    if (len) memcpy(chained + FNPTR_HEADER_LEN, inputData, len);
    int64_t id = fwasm_v1_chain(name, strlen(name), chained, FNPTR_HEADER_LEN + len);
    free(chained);
    return add_call(id, "faasmChain", name);
}

unsigned int faasmAwaitCall(unsigned int callId) {
    faasm_call *c = find_call(callId);
    if (!c) {
        fwasm__msg m = {{0}, 0};
        fwasm__msg_str(&m, "faasmAwaitCall: call id ");
        fwasm__msg_i64(&m, callId);
        fwasm__msg_str(&m, " was not returned by faasmChain in this call");
        fwasm_log(FWASM_LOG_WARN, m.text);
        return FWASM_RC_NOT_RUN;
    }
    if (c->result >= 0) return (unsigned int)c->result;
    if (c->id < 0) {
        c->result = FWASM_RC_NOT_RUN; /* the chain was refused: the call never ran */
        return (unsigned int)c->result;
    }
    int32_t rc = fwasm_v1_await(c->id, FWASM_WAIT_FOREVER);
    if (rc >= 0) {
        c->result = rc;
        c->has_output = 1;
    } else {
        fwasm__msg m = {{0}, 0};
        fwasm__msg_str(&m, "faasmAwaitCall(");
        fwasm__msg_i64(&m, callId);
        fwasm__msg_str(&m, ") failed: ");
        fwasm__msg_str(&m, fwasm_status_name(rc));
        fwasm__msg_last_error(&m);
        c->message = copy_msg(&m);
        fwasm_log(FWASM_LOG_WARN, c->message);
        c->result = rc == FWASM_TIMEOUT ? FWASM_RC_TIMEOUT : FWASM_RC_NOT_RUN;
    }
    return (unsigned int)c->result;
}

static const char *call_message(const faasm_call *c) {
    if (!c) return "unknown call id";
    return c->message ? c->message : "";
}

unsigned int faasmAwaitCallOutput(unsigned int callId, uint8_t *buffer, long bufferLen) {
    unsigned int rc = faasmAwaitCall(callId);
    if (!buffer || bufferLen <= 0) return rc;
    size_t len = (size_t)bufferLen, n;
    faasm_call *c = find_call(callId);
    if (c && c->has_output) {
        int64_t total = fwasm_v1_call_output(c->id, buffer, len);
        n = total < 0 ? 0 : (uint64_t)total < len ? (size_t)total : len;
    } else {
        const char *text = call_message(c);
        n = strlen(text) < len ? strlen(text) : len;
        memcpy(buffer, text, n);
    }
    memset(buffer + n, 0, len - n);
    return rc;
}

unsigned int fwasm_faasm_await_output_alloc(unsigned int callId, char **output, long *outputLen) {
    unsigned int rc = faasmAwaitCall(callId);
    faasm_call *c = find_call(callId);
    uint8_t *out = NULL;
    int64_t n = -1;
    if (c && c->has_output) n = fwasm_call_output_alloc(c->id, &out);
    if (n < 0) {
        const char *text = call_message(c);
        n = (int64_t)strlen(text);
        out = malloc((size_t)n + 1);
        if (!out) out_of_memory();
        memcpy(out, text, (size_t)n + 1);
    }
    *output = (char *)out;
    *outputLen = (long)n;
    return rc;
}

unsigned int faasmChainBatch(FaasmFuncPtr funcPtr, const char *inputData, int nFuncs) {
    if (!inputData) inputData = "";
    if (nFuncs <= 0) return 0;
    unsigned int first = 0;
    for (int i = 0; i < nFuncs; i++) {
        unsigned int id = faasmChain(funcPtr, BYTES_CONST(inputData), (long)strlen(inputData));
        if (i == 0) first = id;
    }
    int failed = 0;
    for (int i = 0; i < nFuncs; i++) failed |= faasmAwaitCall(first + (unsigned int)i) != 0;
    return failed ? 1 : 0;
}

/* ---- State -------------------------------------------------------------------------------- */

/*
 * faasmReadStatePtr hands out a buffer in the guest's memory holding a copy of the value (on
 * Faasm, the value itself is mapped there). The SDK keeps a second, clean copy, and writes
 * the bytes that differ between the two into the local copy ("syncs" the key): before any
 * other read of the key, at faasmPushState and faasmPushStatePartial, and when the function
 * returns. So writes through the pointer are seen by the call's own reads at once, by other
 * calls on the executor from the next sync, and elsewhere after a push, and a call that only
 * reads through the pointer never writes anything back. faasmFlagStateDirty and
 * faasmFlagStateOffsetDirty are accepted but not needed: the comparison finds the changes.
 */
typedef struct state_buf {
    char *key;
    uint8_t *data;  /* what the guest sees and writes */
    uint8_t *clean; /* the value as last read or synced */
    size_t len;
} state_buf;

static state_buf *bufs;
static size_t buf_count, buf_cap;

static state_buf *find_buf(const char *key) {
    for (size_t i = 0; i < buf_count; i++) {
        if (strcmp(bufs[i].key, key) == 0) return &bufs[i];
    }
    return NULL;
}

/* Writes the bytes changed through the key's pointer into the local copy. Runs of changes
 * less than 64 bytes apart go in one write. */
static void sync_buf(const char *op, state_buf *b) {
    size_t klen = strlen(b->key), i = 0;
    while (i < b->len) {
        if (b->data[i] == b->clean[i]) {
            i++;
            continue;
        }
        size_t start = i, end = i + 1, same = 0;
        for (i++; i < b->len && same < 64; i++) {
            if (b->data[i] != b->clean[i]) {
                end = i + 1;
                same = 0;
            } else {
                same++;
            }
        }
        check(fwasm_v1_state_set_offset(b->key, klen, (int64_t)start, b->data + start,
                                        end - start),
              op, b->key);
        memcpy(b->clean + start, b->data + start, end - start);
        i = end;
    }
}

static void sync_key(const char *op, const char *key) {
    state_buf *b = find_buf(key);
    if (b) sync_buf(op, b);
}

/* Fills `len` bytes at `data` from the value: as much as it has, then zeros. */
/* Reads the key into `data` (zero-filling past the value) and returns the value's size. */
static int64_t read_into(const char *op, const char *key, size_t klen, uint8_t *data, size_t len) {
    int64_t size = fwasm_v1_state_get(key, klen, data, len);
    check(size, op, key);
    if ((uint64_t)size < len) memset(data + size, 0, len - (size_t)size);
    return size;
}

/* Rereads the key's buffer (both copies) from the local copy. */
static void refresh_buf(const char *op, state_buf *b) {
    read_into(op, b->key, strlen(b->key), b->data, b->len);
    memcpy(b->clean, b->data, b->len);
}

/* Puts `len` bytes just written at `off` into the key's buffer, if it has one. */
static void update_buf(const char *key, size_t off, const uint8_t *data, size_t len) {
    state_buf *b = find_buf(key);
    if (!b || off >= b->len) return;
    size_t n = len < b->len - off ? len : b->len - off;
    memcpy(b->data + off, data, n);
    memcpy(b->clean + off, data, n);
}

/* Faasm's totalLen: a value shorter than that grows to it, with zeros. */
static void ensure_size(const char *op, const char *key, size_t klen, long totalLen) {
    if (totalLen <= 0) return;
    int64_t size = fwasm_v1_state_size(key, klen);
    check(size, op, key);
    if (size < totalLen) {
        static const uint8_t zero = 0;
        check(fwasm_v1_state_set_offset(key, klen, totalLen - 1, &zero, 1), op, key);
    }
}

size_t faasmReadStateSize(const char *key) {
    size_t klen = key_len("faasmReadStateSize", key);
    sync_key("faasmReadStateSize", key);
    int64_t size = fwasm_v1_state_size(key, klen);
    check(size, "faasmReadStateSize", key);
    return (size_t)size;
}

long faasmReadState(const char *key, unsigned char *buffer, long bufferLen) {
    static const char op[] = "faasmReadState";
    size_t klen = key_len(op, key);
    size_t len = length(op, key, buffer, bufferLen);
    sync_key(op, key);
    return (long)read_into(op, key, klen, buffer, len);
}

uint8_t *faasmReadStatePtr(const char *key, long totalLen) {
    static const char op[] = "faasmReadStatePtr";
    size_t klen = key_len(op, key);
    if (totalLen < 0) fail_op(op, key, "negative length");
    state_buf *b = find_buf(key);
    if (b && (size_t)totalLen <= b->len && (totalLen > 0 || b->len > 0)) return b->data;
    if (b) sync_buf(op, b);
    size_t len = (size_t)totalLen;
    if (len == 0) { /* no length given: the value's current size */
        int64_t size = fwasm_v1_state_size(key, klen);
        check(size, op, key);
        len = (size_t)size;
    }
    uint8_t *data = malloc(len ? len : 1), *clean = malloc(len ? len : 1);
    if (!data || !clean) out_of_memory();
    if (!b) {
        if (buf_count == buf_cap) {
            size_t cap = buf_cap ? buf_cap * 2 : 8;
            state_buf *grown = realloc(bufs, cap * sizeof *grown);
            if (!grown) out_of_memory();
            bufs = grown;
            buf_cap = cap;
        }
        b = &bufs[buf_count++];
        b->key = malloc(klen + 1);
        if (!b->key) out_of_memory();
        memcpy(b->key, key, klen + 1);
    }
    /* A longer totalLen than before gets a new buffer; the old one stays valid but stale. */
    b->data = data;
    b->clean = clean;
    b->len = len;
    refresh_buf(op, b);
    return data;
}

uint8_t *faasmReadStateOffsetPtr(const char *key, long totalLen, long offset, long len) {
    static const char op[] = "faasmReadStateOffsetPtr";
    if (offset < 0 || len < 0 || (totalLen > 0 && offset > totalLen - len)) {
        fail_op(op, key, "the range is not inside totalLen");
    }
    uint8_t *data = faasmReadStatePtr(key, totalLen);
    if ((size_t)offset + (size_t)len > find_buf(key)->len) {
        fail_op(op, key, "the range is past the end of the value");
    }
    return data + offset;
}

void faasmReadStateOffset(const char *key, long totalLen, long offset, uint8_t *buffer,
                          long bufferLen) {
    static const char op[] = "faasmReadStateOffset";
    (void)totalLen;
    size_t klen = key_len(op, key);
    size_t len = length(op, key, buffer, bufferLen);
    if (offset < 0) fail_op(op, key, "negative offset");
    sync_key(op, key);
    if (!len) return;
    int64_t got = fwasm_v1_state_get_offset(key, klen, offset, buffer, len);
    if (got == FWASM_INVALID_ARGUMENT) {
        /* Past the end of the value: read what there is, and zeros beyond (Faasm's values
         * are totalLen bytes, zeros until written). An invalid key fails below instead. */
        int64_t size = fwasm_v1_state_get(key, klen, NULL, 0);
        check(size, op, key);
        size_t avail = size > offset ? (size_t)(size - offset) : 0;
        if (avail > len) avail = len;
        if (avail) check(fwasm_v1_state_get_offset(key, klen, offset, buffer, avail), op, key);
        memset(buffer + avail, 0, len - avail);
        return;
    }
    check(got, op, key);
}

void faasmWriteState(const char *key, const uint8_t *data, long dataLen) {
    static const char op[] = "faasmWriteState";
    size_t klen = key_len(op, key);
    size_t len = length(op, key, data, dataLen);
    check(fwasm_v1_state_set(key, klen, data, len), op, key);
    state_buf *b = find_buf(key);
    if (b) { /* the whole value was replaced: so is the pointer's view of it */
        size_t n = len < b->len ? len : b->len;
        memcpy(b->data, data, n);
        memset(b->data + n, 0, b->len - n);
        memcpy(b->clean, b->data, b->len);
    }
}

void faasmWriteStateOffset(const char *key, long totalLen, long offset, const uint8_t *data,
                           long dataLen) {
    static const char op[] = "faasmWriteStateOffset";
    size_t klen = key_len(op, key);
    size_t len = length(op, key, data, dataLen);
    if (offset < 0) fail_op(op, key, "negative offset");
    ensure_size(op, key, klen, totalLen);
    check(fwasm_v1_state_set_offset(key, klen, offset, data, len), op, key);
    update_buf(key, (size_t)offset, data, len);
}

unsigned long faasmWriteStateFromFile(const char *key, const char *filePath) {
    static const char op[] = "faasmWriteStateFromFile";
    key_len(op, key);
    FILE *f = filePath ? fopen(filePath, "rb") : NULL;
    if (!f) {
        fwasm__msg m = {{0}, 0};
        fwasm__msg_str(&m, "cannot open ");
        fwasm__msg_str(&m, filePath);
        fwasm__msg_str(&m, ": ");
        fwasm__msg_str(&m, strerror(errno));
        fail_op(op, key, m.text);
    }
    size_t len = 0, cap = 0;
    uint8_t *data = NULL;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *grown = cap > len ? realloc(data, cap) : NULL;
            if (!grown) out_of_memory();
            data = grown;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    int error = ferror(f);
    fclose(f);
    if (error) fail_op(op, key, "reading the file failed");
    faasmWriteState(key, data, (long)len);
    free(data);
    return len;
}

void faasmAppendState(const char *key, const uint8_t *data, long dataLen) {
    static const char op[] = "faasmAppendState";
    size_t klen = key_len(op, key);
    size_t len = length(op, key, data, dataLen);
    check(fwasm_v1_state_append(key, klen, data, len), op, key);
}

void faasmReadAppendedState(const char *key, uint8_t *buffer, long bufferLen, long nElems) {
    static const char op[] = "faasmReadAppendedState";
    key_len(op, key);
    size_t len = length(op, key, buffer, bufferLen);
    uint8_t *all;
    int64_t total = fwasm_state_read_appended_alloc(key, &all);
    if (total == FWASM_LIMIT_EXCEEDED && !all) out_of_memory();
    check(total, op, key);
    /* The elements, each a u32 length and its bytes, concatenated into the buffer. */
    size_t pos = 0, out = 0, size = (size_t)total;
    for (long i = 0; i < nElems && size - pos >= 4; i++) {
        size_t elem = fwasm__le32(all + pos);
        pos += 4;
        if (elem > size - pos) break;
        size_t n = elem < len - out ? elem : len - out;
        memcpy(buffer + out, all + pos, n);
        out += n;
        pos += elem;
    }
    memset(buffer + out, 0, len - out);
    free(all);
}

void faasmClearAppendedState(const char *key) {
    size_t klen = key_len("faasmClearAppendedState", key);
    check(fwasm_v1_state_clear_appended(key, klen), "faasmClearAppendedState", key);
}

/* Changes are found by comparison (see above), so flagging them needs nothing done. */
void faasmFlagStateDirty(const char *key, long totalLen) {
    (void)key, (void)totalLen;
}

void faasmFlagStateOffsetDirty(const char *key, long totalLen, long offset, long len) {
    (void)key, (void)totalLen, (void)offset, (void)len;
}

static void push(const char *op, const char *key) {
    size_t klen = key_len(op, key);
    sync_key(op, key);
    check(fwasm_v1_state_push(key, klen), op, key);
}

void faasmPushState(const char *key) {
    push("faasmPushState", key);
}

/* fwasm pushes whole values, so a partial push is a push. */
/* fwasm pushes the whole local copy either way. */
void faasmPushStatePartial(const char *key) {
    push("faasmPushStatePartial", key);
}

void faasmPullState(const char *key, long stateLen) {
    static const char op[] = "faasmPullState";
    (void)stateLen;
    size_t klen = key_len(op, key);
    check(fwasm_v1_state_pull(key, klen), op, key);
    state_buf *b = find_buf(key);
    if (b) refresh_buf(op, b); /* unsynced writes through the pointer are dropped, as on Faasm */
}

static void lock(const char *op, const char *key, int32_t mode) {
    size_t klen = key_len(op, key);
    check(fwasm_v1_state_lock(key, klen, mode), op, key);
}

static void unlock(const char *op, const char *key, int32_t mode) {
    size_t klen = key_len(op, key);
    int32_t status = fwasm_v1_state_unlock(key, klen, mode);
    if (status == FWASM_NOT_FOUND) { /* not held: nothing to release */
        fwasm__msg m = {{0}, 0};
        msg_key(&m, op, key);
        fwasm__msg_str(&m, ": this call does not hold that lock");
        fwasm_log(FWASM_LOG_WARN, m.text);
        return;
    }
    check(status, op, key);
}

void faasmLockStateRead(const char *key) {
    lock("faasmLockStateRead", key, FWASM_LOCK_READ);
}
void faasmUnlockStateRead(const char *key) {
    unlock("faasmUnlockStateRead", key, FWASM_LOCK_READ);
}
void faasmLockStateWrite(const char *key) {
    lock("faasmLockStateWrite", key, FWASM_LOCK_WRITE);
}
void faasmUnlockStateWrite(const char *key) {
    unlock("faasmUnlockStateWrite", key, FWASM_LOCK_WRITE);
}
void faasmLockStateGlobalRead(const char *key) {
    lock("faasmLockStateGlobalRead", key, FWASM_LOCK_GLOBAL_READ);
}
void faasmUnlockStateGlobalRead(const char *key) {
    unlock("faasmUnlockStateGlobalRead", key, FWASM_LOCK_GLOBAL_READ);
}
void faasmLockStateGlobalWrite(const char *key) {
    lock("faasmLockStateGlobalWrite", key, FWASM_LOCK_GLOBAL_WRITE);
}
void faasmUnlockStateGlobalWrite(const char *key) {
    unlock("faasmUnlockStateGlobalWrite", key, FWASM_LOCK_GLOBAL_WRITE);
}

/* ---- The entry point ---------------------------------------------------------------------- */

/* A non-zero result fails the call with that return code: the reason is the output if the
 * function set one (as Faasm reports it), else "main returned N". */
__attribute__((noreturn)) static void exit_with(int result, uint32_t index) {
    size_t out_len;
    const uint8_t *out = fwasm_response_body(response, &out_len);
    if (!out_len || fwasm_v1_fail(out, out_len) != FWASM_OK) {
        fwasm__msg m = {{0}, 0};
        if (index) {
            fwasm__msg_str(&m, "the function faasmChain called (table index ");
            fwasm__msg_i64(&m, index);
            fwasm__msg_str(&m, ") returned ");
        } else {
            fwasm__msg_str(&m, "main returned ");
        }
        fwasm__msg_i64(&m, result);
        fwasm_v1_fail(m.text, m.len);
    }
    /* Return codes are positive: a negative result (say -1) fails the call with 255. */
    _Exit(result > 0 ? result : 255);
}

void fwasm_handle_request(const fwasm_request *req, fwasm_response *res) {
    request = req;
    response = res;
    input = req->body;
    input_len = req->body_len;
    uint32_t index = 0;
    int result;
    if (input_len >= FNPTR_HEADER_LEN && memcmp(input, FNPTR_MAGIC, sizeof FNPTR_MAGIC) == 0) {
        index = fwasm__le32(input + sizeof FNPTR_MAGIC);
        input += FNPTR_HEADER_LEN;
        input_len -= FNPTR_HEADER_LEN;
        if (!index) fwasm_fail("faasmChain input names the NULL function pointer");
        /* A wrong index or signature traps: wasm checks every indirect call. */
        FaasmFuncPtr f = (FaasmFuncPtr)(uintptr_t)index;
        result = f();
    } else {
        result = __main_void();
    }
    /* Writes through faasmReadStatePtr pointers reach the local copy by the end at the latest. */
    for (size_t i = 0; i < buf_count; i++) sync_buf("faasmReadStatePtr", &bufs[i]);
    fwasm__flush_stdio();
    if (result != 0) exit_with(result, index);
}
