/*
 * Faasm's raw host interface (faasm/host_interface.h) over faasm/core.h, for sources that call
 * it directly. Linked with faasm.c into Faasm-API builds.
 */
#include <stdio.h>
#include <string.h>

#include "faasm/core.h"
#include "faasm/host_interface.h"

long __faasm_read_input(unsigned char *buffer, long bufferLen) {
    long size = faasmGetInputSize();
    if (bufferLen == 0) return size;
    long n = size < bufferLen ? size : bufferLen;
    faasmGetInput(buffer, n);
    return n;
}

void __faasm_write_output(const unsigned char *output, long outputLen) {
    (void)outputLen; /* as WAVM: the output is the NUL-terminated string */
    faasmSetOutput(output, output ? (long)strlen((const char *)output) : 0);
}

unsigned int __faasm_chain_name(const char *name, const unsigned char *input, long inputLen) {
    return faasmChainNamed(name, input, inputLen);
}

unsigned int __faasm_chain_ptr(int (*funcPtr)(), const unsigned char *input, long inputLen) {
    return faasmChain(funcPtr, input, inputLen);
}

unsigned int __faasm_await_call(unsigned int messageId) { return faasmAwaitCall(messageId); }

unsigned int __faasm_await_call_output(unsigned int messageId, unsigned char *buffer,
                                       long bufferLen) {
    return faasmAwaitCallOutput(messageId, buffer, bufferLen);
}

long __faasm_read_state(const char *key, unsigned char *buffer, long bufferLen) {
    if (bufferLen == 0) return (long)faasmReadStateSize(key);
    return faasmReadState(key, buffer, bufferLen);
}

unsigned char *__faasm_read_state_ptr(const char *key, long totalLen) {
    return faasmReadStatePtr(key, totalLen);
}

void __faasm_read_state_offset(const char *key, long totalLen, long offset,
                               unsigned char *buffer, long bufferLen) {
    faasmReadStateOffset(key, totalLen, offset, buffer, bufferLen);
}

unsigned char *__faasm_read_state_offset_ptr(const char *key, long totalLen, long offset,
                                             long len) {
    return faasmReadStateOffsetPtr(key, totalLen, offset, len);
}

void __faasm_write_state(const char *key, const unsigned char *data, long dataLen) {
    faasmWriteState(key, data, dataLen);
}

void __faasm_write_state_offset(const char *key, long totalLen, long offset,
                                const unsigned char *data, long dataLen) {
    faasmWriteStateOffset(key, totalLen, offset, data, dataLen);
}

void __faasm_append_state(const char *key, const unsigned char *data, long dataLen) {
    faasmAppendState(key, data, dataLen);
}

void __faasm_read_appended_state(const char *key, unsigned char *buffer, long bufferLen,
                                 long nElems) {
    faasmReadAppendedState(key, buffer, bufferLen, nElems);
}

void __faasm_clear_appended_state(const char *key) { faasmClearAppendedState(key); }

void __faasm_flag_state_dirty(const char *key, long totalLen) {
    faasmFlagStateDirty(key, totalLen);
}

void __faasm_flag_state_offset_dirty(const char *key, long totalLen, long offset, long len) {
    faasmFlagStateOffsetDirty(key, totalLen, offset, len);
}

void __faasm_push_state(const char *key) { faasmPushState(key); }
void __faasm_push_state_partial(const char *key) { faasmPushStatePartial(key); }
void __faasm_pull_state(const char *key, long stateLen) { faasmPullState(key, stateLen); }
void __faasm_lock_state_read(const char *key) { faasmLockStateRead(key); }
void __faasm_unlock_state_read(const char *key) { faasmUnlockStateRead(key); }
void __faasm_lock_state_write(const char *key) { faasmLockStateWrite(key); }
void __faasm_unlock_state_write(const char *key) { faasmUnlockStateWrite(key); }

int __faasm_conf_flag(const char *key) { return (int)getConfFlag(key); }

void __faasm_backtrace(int depth) {
    (void)depth;
    printf("__faasm_backtrace: fwasm keeps no call stack to print; the call's trace has its "
           "spans\n");
}

void __faasm_sm_reduce(void *varPtr, int varType, int reduceOp, int currentBatch) {
    (void)varPtr, (void)varType, (void)reduceOp, (void)currentBatch;
}

void __faasm_sm_critical_local(void) {}
void __faasm_sm_critical_local_end(void) {}

void __faasm_migrate_point(void (*entryPoint)(int), int arg) { (void)entryPoint, (void)arg; }
