/* A header fwasm functions cannot use: including it fails saying why (else the build machine's own header, not WASI's, or none, would be found). */
#ifndef FWASM_UNSUPPORTED_NETDB_H
#define FWASM_UNSUPPORTED_NETDB_H
#error "fwasm functions cannot reach the network yet (netdb.h: getaddrinfo, name lookups): call other functions with faasmChainNamed or fwasm_chain, or reach services through the sidecar"
#endif
