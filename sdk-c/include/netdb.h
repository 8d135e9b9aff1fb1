/*
 * netdb.h for fwasm functions: name lookups (getaddrinfo), which the C SDK answers through
 * the host (ABI.md section 14). The host looks up only names the function is allowed to
 * reach, and gives only their public addresses.
 */
#ifndef FWASM_NETDB_H
#define FWASM_NETDB_H

#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo {
    int ai_flags;
    int ai_family;
    int ai_socktype;
    int ai_protocol;
    socklen_t ai_addrlen;
    struct sockaddr *ai_addr;
    char *ai_canonname;
    struct addrinfo *ai_next;
};

#define AI_PASSIVE 0x01
#define AI_CANONNAME 0x02
#define AI_NUMERICHOST 0x04
#define AI_V4MAPPED 0x08
#define AI_ALL 0x10
#define AI_ADDRCONFIG 0x20
#define AI_NUMERICSERV 0x400

#define EAI_BADFLAGS (-1)
#define EAI_NONAME (-2)
#define EAI_AGAIN (-3)
#define EAI_FAIL (-4)
#define EAI_FAMILY (-6)
#define EAI_SOCKTYPE (-7)
#define EAI_SERVICE (-8)
#define EAI_MEMORY (-10)
#define EAI_SYSTEM (-11)

/* A numeric `node` is answered at once; a name is looked up by the host (EAI_FAIL when the
 * function may not reach it: fwasm_last_error says why). `service` is a port number, "http"
 * or "https". Only TCP (SOCK_STREAM) addresses are given. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);
void freeaddrinfo(struct addrinfo *res);
const char *gai_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
