/* A TCP client written to POSIX: for a body "HOST PORT MESSAGE", looks HOST up, connects,
 * sends MESSAGE (or, for "@N", N bytes of 'x'), shuts its sending side and reads until the
 * server closes: replies "echoed: WHAT CAME BACK" (or "echoed N bytes"), or "error: STEP:
 * STRERROR (WHY)". For the body "listen", tries to listen and says how each step failed; for
 * "drain HOST PORT", reads until the server closes and says how many bytes came; for "hold
 * HOST PORT MESSAGE", connects, sends MESSAGE and returns without closing; for "sockets N",
 * opens N sockets and says which failed; for "connects N IPV4 PORT", connects and closes N
 * times and says which failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fwasm.h>

static void failed(fwasm_response *res, const char *step, const char *what) {
    char why[512] = {0};
    fwasm_last_error(why, sizeof why);
    fwasm_response_printf(res, "error: %s: %s (%s)", step, what, why);
}

static void try_listening(fwasm_response *res) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(8080)};
    int bound = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    fwasm_response_printf(res, "bind %d: %s; ", bound, strerror(errno));
    int listening = listen(fd, 1);
    fwasm_response_printf(res, "listen %d: %s; ", listening, strerror(errno));
    int accepted = accept(fd, NULL, NULL);
    fwasm_response_printf(res, "accept %d: %s", accepted, strerror(errno));
    close(fd);
}

FWASM_HANDLER(req, res) {
    if (!strcmp((const char *)req->body, "listen")) {
        try_listening(res);
        return;
    }
    int count = 0, at_port = 0;
    char address[64] = {0};
    if (sscanf((const char *)req->body, "sockets %d", &count) == 1) {
        for (int i = 1; i <= count; i++) {
            if (socket(AF_INET, SOCK_STREAM, 0) < 0) {
                char step[32];
                snprintf(step, sizeof step, "socket %d", i);
                failed(res, step, strerror(errno));
                return;
            }
        }
        fwasm_response_printf(res, "opened %d sockets", count);
        return;
    }
    if (sscanf((const char *)req->body, "connects %d %63s %d", &count, address, &at_port) == 3) {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(at_port)};
        inet_pton(AF_INET, address, &to.sin_addr);
        for (int i = 1; i <= count; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
                char step[32];
                snprintf(step, sizeof step, "connect %d", i);
                failed(res, step, strerror(errno));
                return;
            }
            close(fd);
        }
        fwasm_response_printf(res, "connected %d times", count);
        return;
    }
    char mode[16] = {0}, host[256] = {0}, port[16] = {0};
    int used = 0;
    const char *body = (const char *)req->body;
    if (!strncmp(body, "drain ", 6) || !strncmp(body, "hold ", 5)) {
        sscanf(body, "%15s", mode);
        body += strlen(mode) + 1;
    }
    sscanf(body, "%255s %15s %n", host, port, &used);
    const char *message = body + used;
    size_t length = strlen(message);
    char *big = NULL;
    if (message[0] == '@') {
        length = strtoul(message + 1, NULL, 10);
        big = malloc(length);
        memset(big, 'x', length);
        message = big;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int looked_up = getaddrinfo(host, port, &hints, &found);
    if (looked_up) {
        failed(res, "getaddrinfo", gai_strerror(looked_up));
        return;
    }
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0) {
        failed(res, "socket", strerror(errno));
        return;
    }
    if (connect(fd, found->ai_addr, found->ai_addrlen) < 0) {
        failed(res, "connect", strerror(errno));
        return;
    }
    freeaddrinfo(found);
    if (!strcmp(mode, "hold")) {
        send(fd, message, strlen(message), 0);
        fwasm_response_printf(res, "holding socket %d", fd); /* never closed: the call ends */
        return;
    }
    if (!strcmp(mode, "drain")) {
        static char chunk[65536];
        size_t drained = 0;
        ssize_t n;
        shutdown(fd, SHUT_WR);
        while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) drained += (size_t)n;
        if (n < 0) {
            char step[64];
            snprintf(step, sizeof step, "recv after %zu bytes", drained);
            failed(res, step, strerror(errno));
            return;
        }
        fwasm_response_printf(res, "drained %zu bytes", drained);
        return;
    }
    /* Half with send, half with write: both reach the socket. */
    size_t half = length / 2;
    if (send(fd, message, half, 0) != (ssize_t)half ||
        write(fd, message + half, length - half) != (ssize_t)(length - half)) {
        failed(res, "send", strerror(errno));
        return;
    }
    if (shutdown(fd, SHUT_WR) < 0) {
        failed(res, "shutdown", strerror(errno));
        return;
    }
    size_t total = 0, cap = length + 1;
    char *back = malloc(cap);
    for (int turn = 0;; turn++) {
        /* Alternately with recv and read. */
        ssize_t n = turn % 2 ? read(fd, back + total, cap - 1 - total)
                             : recv(fd, back + total, cap - 1 - total, 0);
        if (n < 0) {
            failed(res, "recv", strerror(errno));
            return;
        }
        if (n == 0 || total + (size_t)n == cap - 1) {
            total += (size_t)n;
            break;
        }
        total += (size_t)n;
    }
    close(fd);
    back[total] = 0;
    if (big) {
        size_t same = 0;
        while (same < total && back[same] == 'x') same++;
        fwasm_response_printf(res, "echoed %zu bytes", same);
    } else {
        fwasm_response_printf(res, "echoed: %s", back);
    }
}
