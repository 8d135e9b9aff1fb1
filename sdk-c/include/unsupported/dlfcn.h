/* A header fwasm functions cannot use: including it fails saying why (else the build machine's own header, not WASI's, or none, would be found). */
#ifndef FWASM_UNSUPPORTED_DLFCN_H
#define FWASM_UNSUPPORTED_DLFCN_H
#error "fwasm functions cannot use dynamic loading (dlfcn.h, dlopen): link everything the function needs into its module"
#endif
