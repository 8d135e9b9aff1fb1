/*
 * Faasm's raw host interface, the calls its helper library makes: Faasm sources that call
 * them directly build unchanged. With `fwasm build` they are implemented over faasm/core.h
 * (sdk-c/src/host_interface.c); a module built by Faasm's own toolchain imports them from the
 * host instead (ABI.md, section 11). As on WAVM, Faasm's default runtime, __faasm_write_output
 * takes a NUL-terminated string and __faasm_await_call_output a buffer and its capacity.
 */
#ifndef FAASM_HOST_INTERFACE_H
#define FAASM_HOST_INTERFACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Input and output ---- */
long __faasm_read_input(unsigned char *buffer, long bufferLen);
void __faasm_write_output(const unsigned char *output, long outputLen);

/* ---- Chaining ---- */
unsigned int __faasm_chain_name(const char *name, const unsigned char *input, long inputLen);
unsigned int __faasm_chain_ptr(int (*funcPtr)(), const unsigned char *input, long inputLen);
unsigned int __faasm_await_call(unsigned int messageId);
unsigned int __faasm_await_call_output(unsigned int messageId, unsigned char *buffer,
                                       long bufferLen);

/* ---- State ---- */
long __faasm_read_state(const char *key, unsigned char *buffer, long bufferLen);
unsigned char *__faasm_read_state_ptr(const char *key, long totalLen);
void __faasm_read_state_offset(const char *key, long totalLen, long offset,
                               unsigned char *buffer, long bufferLen);
unsigned char *__faasm_read_state_offset_ptr(const char *key, long totalLen, long offset,
                                             long len);
void __faasm_write_state(const char *key, const unsigned char *data, long dataLen);
void __faasm_write_state_offset(const char *key, long totalLen, long offset,
                                const unsigned char *data, long dataLen);
void __faasm_append_state(const char *key, const unsigned char *data, long dataLen);
void __faasm_read_appended_state(const char *key, unsigned char *buffer, long bufferLen,
                                 long nElems);
void __faasm_clear_appended_state(const char *key);
void __faasm_flag_state_dirty(const char *key, long totalLen);
void __faasm_flag_state_offset_dirty(const char *key, long totalLen, long offset, long len);
void __faasm_push_state(const char *key);
void __faasm_push_state_partial(const char *key);
void __faasm_pull_state(const char *key, long stateLen);
void __faasm_lock_state_read(const char *key);
void __faasm_unlock_state_read(const char *key);
void __faasm_lock_state_write(const char *key);
void __faasm_unlock_state_write(const char *key);

/* ---- Configuration and debugging ---- */
/* As getConfFlag: 1 for ALWAYS_ON, 0 for ALWAYS_OFF, else whether the function's environment
 * sets the flag to "on", "1" or "true" (PYTHON_PRELOAD is off unless it does). */
int __faasm_conf_flag(const char *key);
void __faasm_backtrace(int depth);

/* ---- Threads' shared memory and migration: a function on fwasm runs on one thread and is
 * never migrated, so there is nothing to merge or move: these do nothing. ---- */
void __faasm_sm_reduce(void *varPtr, int varType, int reduceOp, int currentBatch);
void __faasm_sm_critical_local(void);
void __faasm_sm_critical_local_end(void);
void __faasm_migrate_point(void (*entryPoint)(int), int arg);

#ifdef __cplusplus
}
#endif

#endif /* FAASM_HOST_INTERFACE_H */
