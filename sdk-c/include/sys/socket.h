/*
 * sys/socket.h for fwasm functions: WASI's, plus the client calls WASI lacks, which the C
 * SDK provides over fwasm's socket imports (ABI.md section 14). A function connects to the
 * hosts it is allowed (`fwasm upload --allow-host HOST:PORT`); read, write, send, recv,
 * shutdown and close then work on the socket as on any other. Functions do not listen:
 * bind and listen fail with EOPNOTSUPP, accept with ENOTSUP.
 */
#include_next <sys/socket.h>

#ifndef FWASM_SYS_SOCKET_H
#define FWASM_SYS_SOCKET_H

#ifdef __cplusplus
extern "C" {
#endif

/* AF_INET or AF_INET6, SOCK_STREAM, protocol 0 or IPPROTO_TCP: a TCP client socket. */
int socket(int domain, int type, int protocol);
/* Connects to a sockaddr_in or sockaddr_in6 (an address getaddrinfo gave, or a literal). */
int connect(int fd, const struct sockaddr *addr, socklen_t len);
int bind(int fd, const struct sockaddr *addr, socklen_t len);
int listen(int fd, int backlog);

#ifdef __cplusplus
}
#endif

#endif
