/*
 * Faasm's C API (faasm/core.h) on fwasm: the same names and types, so a Faasm function's
 * source builds unchanged with `fwasm build`. The entry point is main(); its return value is
 * the call's result (0: success; N: the call fails with return code N). Input is the request
 * body, output the response body (status 200). Implemented in sdk-c/src/faasm.c over fwasm's
 * own ABI; sdk-c/README.md says how each call maps and where fwasm differs.
 */
#ifndef FAASM_CORE_H
#define FAASM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define BYTES(arr) reinterpret_cast<uint8_t *>(arr)
#define BYTES_CONST(arr) reinterpret_cast<const uint8_t *>(arr)
extern "C" {
#else
#define BYTES(arr) ((uint8_t *)(arr))
#define BYTES_CONST(arr) ((const uint8_t *)(arr))
#endif

/* Faasm's zygote: `FAASM_ZYGOTE() { ...; return 0; }` runs once per executor, before the
 * first call; every call starts from the memory it leaves (a non-zero result fails every
 * call). It may not chain or read global state. */
#define FAASM_ZYGOTE() __attribute__((export_name("_faasm_zygote"))) int _faasm_zygote(void)

/* A function of this module that faasmChain can call: `int f()` (or `int f(void)`). */
typedef int (*FaasmFuncPtr)();

/* ---- Input and output ---- */
long faasmGetInputSize(void);
void faasmGetInput(uint8_t *buffer, long bufferLen);
void faasmSetOutput(const uint8_t *newOutput, long outputLen);

/* ---- Chaining: ids are small numbers local to this call (1, 2, 3, ...) ---- */
unsigned int faasmChainNamed(const char *name, const uint8_t *inputData, long inputDataSize);
unsigned int faasmChain(FaasmFuncPtr funcPtr, const uint8_t *inputData, long inputDataSize);
/* Chains funcPtr nFuncs times with the C string inputData, awaits them all: 0 if all
 * succeeded, else 1. */
unsigned int faasmChainBatch(FaasmFuncPtr funcPtr, const char *inputData, int nFuncs);
/* Waits for the call: 0 if it succeeded, else its return code (non-zero). */
unsigned int faasmAwaitCall(unsigned int callId);
/* faasmAwaitCall, then copies the call's output (or failure message) into buffer. */
unsigned int faasmAwaitCallOutput(unsigned int callId, uint8_t *buffer, long bufferLen);

/* ---- State ---- */
size_t faasmReadStateSize(const char *key);
long faasmReadState(const char *key, unsigned char *buffer, long bufferLen);
uint8_t *faasmReadStatePtr(const char *key, long totalLen);
void faasmReadStateOffset(const char *key, long totalLen, long offset, uint8_t *buffer,
                          long bufferLen);
uint8_t *faasmReadStateOffsetPtr(const char *key, long totalLen, long offset, long len);
void faasmWriteState(const char *key, const uint8_t *data, long dataLen);
void faasmWriteStateOffset(const char *key, long totalLen, long offset, const uint8_t *data,
                           long dataLen);
unsigned long faasmWriteStateFromFile(const char *key, const char *filePath);
void faasmAppendState(const char *key, const uint8_t *data, long dataLen);
void faasmReadAppendedState(const char *key, uint8_t *buffer, long bufferLen, long nElems);
void faasmClearAppendedState(const char *key);
void faasmFlagStateDirty(const char *key, long totalLen);
void faasmFlagStateOffsetDirty(const char *key, long totalLen, long offset, long len);
void faasmPushState(const char *key);
void faasmPushStatePartial(const char *key);
void faasmPullState(const char *key, long stateLen);

/* Local locks (the calls on this executor) and global ones (every executor). */
void faasmLockStateRead(const char *key);
void faasmUnlockStateRead(const char *key);
void faasmLockStateWrite(const char *key);
void faasmUnlockStateWrite(const char *key);
void faasmLockStateGlobalRead(const char *key);
void faasmUnlockStateGlobalRead(const char *key);
void faasmLockStateGlobalWrite(const char *key);
void faasmUnlockStateGlobalWrite(const char *key);

/* Faasm's flags ALWAYS_ON (1) and ALWAYS_OFF (0); any other is 1 if the environment variable
 * `key` (the function's settings) is "on", "1" or "true", else 0. */
unsigned int getConfFlag(const char *key);

/* Used by the C++ helpers below and in faasm/input.h; not Faasm API. */
const char *fwasm_faasm_string_input(const char *defaultValue);
unsigned int fwasm_faasm_await_output_alloc(unsigned int callId, char **output, long *outputLen);

#ifdef __cplusplus
}

/* Faasm's C++ sources also pass text where core.h takes bytes, and use the newer form of
 * faasmAwaitCallOutput that hands back a buffer. */
inline void faasmSetOutput(const char *newOutput, long outputLen) {
    faasmSetOutput(reinterpret_cast<const uint8_t *>(newOutput), outputLen);
}
inline void faasmSetOutput(decltype(nullptr), long outputLen) {
    faasmSetOutput(static_cast<const uint8_t *>(nullptr), outputLen);
}
inline unsigned int faasmAwaitCallOutput(unsigned int callId, char **output, int *outputLen) {
    long len = 0;
    unsigned int result = fwasm_faasm_await_output_alloc(callId, output, &len);
    *outputLen = static_cast<int>(len);
    return result;
}
#endif

#endif /* FAASM_CORE_H */
