/* Client TCP sockets for functions written to POSIX, over fwasm's socket imports (module
 * fwasm_net, ABI.md section 14): socket reserves a descriptor in the host's WASI descriptor
 * space, connect connects it to a host the function is allowed, and wasi-libc's own read,
 * write, send, recv, shutdown and close then reach it. getaddrinfo asks the host, which
 * looks up only names the function may reach. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <fwasm.h>

#define FWASM_NET(name) __attribute__((import_module("fwasm_net"), import_name(name)))

FWASM_NET("socket") int32_t fwasm_net_socket(void);
FWASM_NET("connect") int32_t fwasm_net_connect(int32_t fd, const char *host, size_t host_len,
                                               int32_t port);
FWASM_NET("resolve") int64_t fwasm_net_resolve(const char *name, size_t name_len);
FWASM_NET("answer") int64_t fwasm_net_answer(void *buf, size_t buf_len);

static int fail(int code) {
    errno = code;
    return -1;
}

/* The errno for a status a socket import returned (`limit`: the errno for LimitExceeded). */
static int errno_of(int64_t status, int limit) {
    switch (status) {
    case FWASM_PERMISSION_DENIED: return EACCES;
    case FWASM_UNAVAILABLE: return ECONNREFUSED;
    case FWASM_TIMEOUT: return ETIMEDOUT;
    case FWASM_LIMIT_EXCEEDED: return limit;
    case FWASM_INVALID_ARGUMENT: return EINVAL;
    default: return EIO;
    }
}

int socket(int domain, int type, int protocol) {
    if (domain != AF_INET && domain != AF_INET6) return fail(EAFNOSUPPORT);
    if ((type & ~SOCK_CLOEXEC) != SOCK_STREAM) return fail(EPROTONOSUPPORT);
    if (protocol != 0 && protocol != IPPROTO_TCP) return fail(EPROTONOSUPPORT);
    int32_t fd = fwasm_net_socket();
    return fd < 0 ? fail(errno_of(fd, EMFILE)) : fd;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    char host[INET6_ADDRSTRLEN];
    int port;
    if (!addr) return fail(EFAULT);
    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    } else {
        return fail(addr->sa_family == AF_INET || addr->sa_family == AF_INET6 ? EINVAL
                                                                             : EAFNOSUPPORT);
    }
    int32_t status = fwasm_net_connect(fd, host, strlen(host), port);
    return status < 0 ? fail(errno_of(status, ENOBUFS)) : 0;
}

/* Functions are clients: nothing listens in one. */
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    (void)fd, (void)addr, (void)len;
    return fail(EOPNOTSUPP);
}

int listen(int fd, int backlog) {
    (void)fd, (void)backlog;
    return fail(EOPNOTSUPP);
}

/* ---- Name lookups --------------------------------------------------------------------------- */

/* The port `service` names, or -1. */
static int port_of(const char *service, int numeric_only) {
    if (!service || !*service) return 0;
    char *end;
    long port = strtol(service, &end, 10);
    if (!*end) return port >= 0 && port <= 65535 ? (int)port : -1;
    if (numeric_only) return -1;
    if (!strcmp(service, "http")) return 80;
    if (!strcmp(service, "https")) return 443;
    return -1;
}

/* Adds the address `text` (if it parses, and is of `family` unless AF_UNSPEC) to *tail. */
static int add_address(const char *text, int family, int port, int flags, const char *node,
                       struct addrinfo ***tail) {
    union {
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    memset(&addr, 0, sizeof addr);
    socklen_t len;
    if ((family == AF_UNSPEC || family == AF_INET) &&
        inet_pton(AF_INET, text, &addr.in.sin_addr) == 1) {
        addr.in.sin_family = AF_INET;
        addr.in.sin_port = htons((uint16_t)port);
        len = sizeof addr.in;
    } else if ((family == AF_UNSPEC || family == AF_INET6) &&
               inet_pton(AF_INET6, text, &addr.in6.sin6_addr) == 1) {
        addr.in6.sin6_family = AF_INET6;
        addr.in6.sin6_port = htons((uint16_t)port);
        len = sizeof addr.in6;
    } else {
        return 0;
    }
    struct addrinfo *info = calloc(1, sizeof *info + sizeof addr);
    if (!info) return EAI_MEMORY;
    info->ai_family = addr.in.sin_family;
    info->ai_socktype = SOCK_STREAM;
    info->ai_protocol = IPPROTO_TCP;
    info->ai_addrlen = len;
    info->ai_addr = (struct sockaddr *)(info + 1);
    memcpy(info->ai_addr, &addr, len);
    /* Only the first result carries the name (the caller passes the flag for it alone). */
    if ((flags & AI_CANONNAME) && node) info->ai_canonname = strdup(node);
    **tail = info;
    *tail = &info->ai_next;
    return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    int flags = hints ? hints->ai_flags : 0;
    int family = hints ? hints->ai_family : AF_UNSPEC;
    int socktype = hints ? hints->ai_socktype : 0;
    if (!res) return EAI_SYSTEM;
    *res = NULL;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return EAI_FAMILY;
    if (socktype != 0 && socktype != SOCK_STREAM) return EAI_SOCKTYPE;
    if (!node) return EAI_NONAME; /* nothing listens in a function, and loopback is refused */
    int port = port_of(service, flags & AI_NUMERICSERV);
    if (port < 0) return EAI_SERVICE;

    struct addrinfo *list = NULL, **tail = &list;
    unsigned char probe[sizeof(struct in6_addr)];
    int numeric = inet_pton(AF_INET, node, probe) == 1 || inet_pton(AF_INET6, node, probe) == 1;
    if (numeric) {
        int status = add_address(node, family, port, flags, NULL, &tail);
        if (status) return status;
        if (!list) return EAI_FAMILY;
        *res = list;
        return 0;
    }
    if (flags & AI_NUMERICHOST) return EAI_NONAME;
    int64_t len = fwasm_net_resolve(node, strlen(node));
    if (len < 0) {
        return len == FWASM_NOT_FOUND ? EAI_NONAME : len == FWASM_TIMEOUT ? EAI_AGAIN : EAI_FAIL;
    }
    char *text = malloc((size_t)len + 1);
    if (!text) return EAI_MEMORY;
    int64_t copied = fwasm_net_answer(text, (size_t)len);
    text[copied < 0 ? 0 : copied < len ? copied : len] = 0;
    int status = 0;
    for (char *line = text; *line && !status;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        status = add_address(line, family, port, list ? 0 : flags, node, &tail);
        line = end ? end + 1 : line + strlen(line);
    }
    free(text);
    if (status || !list) {
        freeaddrinfo(list);
        return status ? status : EAI_NONAME;
    }
    *res = list;
    return 0;
}

void freeaddrinfo(struct addrinfo *res) {
    while (res) {
        struct addrinfo *next = res->ai_next;
        free(res->ai_canonname);
        free(res);
        res = next;
    }
}

const char *gai_strerror(int code) {
    switch (code) {
    case 0: return "Success";
    case EAI_BADFLAGS: return "Invalid flags";
    case EAI_NONAME: return "Name does not resolve";
    case EAI_AGAIN: return "Temporary failure in name resolution";
    case EAI_FAIL: return "Name lookup refused or failed (fwasm_last_error says why)";
    case EAI_FAMILY: return "Address family not supported";
    case EAI_SOCKTYPE: return "Socket type not supported";
    case EAI_SERVICE: return "Unknown service";
    case EAI_MEMORY: return "Out of memory";
    case EAI_SYSTEM: return "System error";
    default: return "Unknown error";
    }
}
