/* A header fwasm functions cannot use: including it fails saying why (else the build machine's own header, not WASI's, or none, would be found). */
#ifndef FWASM_UNSUPPORTED_PTHREAD_H
#define FWASM_UNSUPPORTED_PTHREAD_H
#error "fwasm functions cannot use threads (pthread.h): a function runs on one thread; chain calls (faasmChain, fwasm_chain) to run work in parallel"
#endif
