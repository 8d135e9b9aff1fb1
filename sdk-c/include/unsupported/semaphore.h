/* A header fwasm functions cannot use: including it fails saying why (else the build machine's own header, not WASI's, or none, would be found). */
#ifndef FWASM_UNSUPPORTED_SEMAPHORE_H
#define FWASM_UNSUPPORTED_SEMAPHORE_H
#error "fwasm functions cannot use threads (semaphore.h): a function runs on one thread"
#endif
