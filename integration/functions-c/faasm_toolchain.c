/*
 * A function as Faasm's own toolchain builds them: no fwasm or Faasm header, Faasm's raw host
 * interface imported from module `env` by name, `_start` (wasi-libc's, running main) as entry.
 * Built with plain clang by the tests. What it does depends on its input:
 *   "echo:TEXT"  outputs TEXT;
 *   "chain"      chains square(7) by function pointer and itself by name, awaits both;
 *   "chain_unknown" chains a function that does not exist (Faasm raises: the call fails);
 *   "state"      writes, maps, changes through the pointer, pushes and reads back state;
 *   "memory"     grows memory with anonymous mmap and __sbrk and uses it;
 *   "conf"       outputs its conf flags; "args" its argv; "env" some of its environment;
 *   "fail"       prints a line and returns 5;
 *   "zygote"     outputs 1 more than what its zygote (run once) left: 6 on every call;
 *   "net:PORT:MESSAGE" connects to 127.0.0.1:PORT with Faasm's socket calls, sends MESSAGE
 *                and outputs what comes back ("net: ..."), or how connect failed;
 *   "listen"     outputs what bind and listen answer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAASM(name) __attribute__((import_module("env"), import_name(#name)))

FAASM(socket) int faasm_socket(int domain, int type, int protocol);
FAASM(connect) int faasm_connect(int fd, const struct sockaddr *addr, socklen_t len);
FAASM(bind) int faasm_bind(int fd, const struct sockaddr *addr, socklen_t len);
FAASM(listen) int faasm_listen(int fd, int backlog);

FAASM(__faasm_read_input) int faasm_read_input(uint8_t *buf, int len);
FAASM(__faasm_write_output) void faasm_write_output(const uint8_t *ptr, int len);
FAASM(__faasm_chain_name) unsigned faasm_chain_name(const char *name, const uint8_t *in, int len);
FAASM(__faasm_chain_ptr) unsigned faasm_chain_ptr(int (*f)(int), const uint8_t *in, int len);
FAASM(__faasm_await_call) int faasm_await_call(unsigned id);
FAASM(__faasm_await_call_output) int faasm_await_call_output(unsigned id, uint8_t *buf, int cap);
FAASM(__faasm_write_state) void faasm_write_state(const char *key, const uint8_t *data, int len);
FAASM(__faasm_read_state) int faasm_read_state(const char *key, uint8_t *buf, int len);
FAASM(__faasm_read_state_ptr) uint8_t *faasm_read_state_ptr(const char *key, int len);
FAASM(__faasm_flag_state_dirty) void faasm_flag_state_dirty(const char *key, int len);
FAASM(__faasm_push_state) void faasm_push_state(const char *key);
FAASM(__faasm_pull_state) void faasm_pull_state(const char *key, int len);
FAASM(__faasm_append_state) void faasm_append_state(const char *key, const uint8_t *data, int len);
FAASM(__faasm_read_appended_state)
void faasm_read_appended_state(const char *key, uint8_t *buf, int len, int n);
FAASM(__faasm_conf_flag) int faasm_conf_flag(const char *key);
FAASM(mmap) void *faasm_mmap(void *addr, int len, int prot, int flags, int fd, long long off);
FAASM(__sbrk) void *faasm_sbrk(int increment);

static char out[4096];

/* Faasm's zygote: runs once, before the first call; every call starts from what it left. */
static int zygote_count = 0;
__attribute__((export_name("_faasm_zygote"))) int zygote(void) {
    zygote_count += 5;
    return 0;
}

static void output(const char *text) { faasm_write_output((const uint8_t *)text, (int)strlen(text)); }

/* Chained by pointer: Faasm passes the integer the input spells. */
static int square(int x) {
    snprintf(out, sizeof out, "%d", x * x);
    output(out);
    return 0;
}

static int chain(void) {
    unsigned by_pointer = faasm_chain_ptr(square, (const uint8_t *)"7", 1);
    const char *echo = "echo:named";
    unsigned by_name = faasm_chain_name("toolchain", (const uint8_t *)echo, (int)strlen(echo));
    char squared[32] = {0}, named[32] = {0};
    int rc1 = faasm_await_call_output(by_pointer, (uint8_t *)squared, sizeof squared - 1);
    int rc2 = faasm_await_call_output(by_name, (uint8_t *)named, sizeof named - 1);
    int unknown = faasm_await_call(999);
    snprintf(out, sizeof out, "square=%s rc=%d named=%s rc=%d unknown=%d", squared, rc1, named,
             rc2, unknown);
    output(out);
    return 0;
}

static int state(void) {
    faasm_write_state("greeting", (const uint8_t *)"hello", 5);
    faasm_push_state("greeting");
    uint8_t *mapped = faasm_read_state_ptr("greeting", 5);
    mapped[0] = 'j';
    faasm_flag_state_dirty("greeting", 5);
    faasm_push_state("greeting");
    faasm_pull_state("greeting", 5);
    char back[16] = {0};
    int size = faasm_read_state("greeting", (uint8_t *)back, 5);
    int size_only = faasm_read_state("greeting", NULL, 0);
    faasm_append_state("log", (const uint8_t *)"ab", 2);
    faasm_append_state("log", (const uint8_t *)"cd", 2);
    char appended[8] = {0};
    faasm_read_appended_state("log", (uint8_t *)appended, 4, 2);
    snprintf(out, sizeof out, "%s %d %d %c %s", back, size, size_only, mapped[0], appended);
    output(out);
    return 0;
}

static int memory(void) {
    char *a = faasm_mmap(0, 100000, 3, 0x22, -1, 0);
    char *b = faasm_sbrk(65536);
    if (a == (void *)-1 || b == (void *)-1) return 9;
    memset(a, 'x', 100000);
    memset(b, 'y', 65536);
    snprintf(out, sizeof out, "%c%c %d", a[99999], b[65535], b - a >= 100000);
    output(out);
    return 0;
}

static int network(const char *spec) {
    int port = atoi(spec);
    const char *message = strchr(spec, ':');
    message = message ? message + 1 : "";
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = faasm_socket(AF_INET, SOCK_STREAM, 0);
    int connected = faasm_connect(fd, (struct sockaddr *)&addr, sizeof addr);
    if (connected != 0) {
        snprintf(out, sizeof out, "socket %d connect %d", fd, connected);
        output(out);
        return 0;
    }
    send(fd, message, strlen(message), 0);
    shutdown(fd, SHUT_WR);
    char back[128] = {0};
    size_t total = 0;
    ssize_t n;
    while (total < sizeof back - 1 && (n = recv(fd, back + total, sizeof back - 1 - total, 0)) > 0) {
        total += (size_t)n;
    }
    close(fd);
    snprintf(out, sizeof out, "net: %s", back);
    output(out);
    return 0;
}

int main(int argc, char **argv) {
    static uint8_t input[1024];
    int size = faasm_read_input(NULL, 0);
    if (size >= (int)sizeof input) return 2;
    int got = faasm_read_input(input, size);
    input[got] = 0;
    const char *text = (const char *)input;
    if (strncmp(text, "echo:", 5) == 0) {
        output(text + 5);
        return 0;
    }
    if (strcmp(text, "chain") == 0) return chain();
    if (strcmp(text, "chain_unknown") == 0) {
        faasm_chain_name("nothing", (const uint8_t *)"", 0); /* refused: fails the call */
        output("not reached");
        return 0;
    }
    if (strcmp(text, "state") == 0) return state();
    if (strcmp(text, "memory") == 0) return memory();
    if (strcmp(text, "conf") == 0) {
        snprintf(out, sizeof out, "%d%d%d%d", faasm_conf_flag("ALWAYS_ON"),
                 faasm_conf_flag("PYTHON_PRELOAD"), faasm_conf_flag("MY_FLAG"),
                 faasm_conf_flag("ALWAYS_OFF"));
        output(out);
        return 0;
    }
    if (strcmp(text, "zygote") == 0) {
        zygote_count += 1; /* gone by the next call, which starts from the zygote's 5 */
        snprintf(out, sizeof out, "%d", zygote_count);
        output(out);
        return 0;
    }
    if (strcmp(text, "env") == 0) {
        snprintf(out, sizeof out, "%s %s %s", getenv("PYTHONHASHSEED"), getenv("MKL_NUM_THREADS"),
                 getenv("MY_FLAG"));
        output(out);
        return 0;
    }
    if (strcmp(text, "args") == 0) {
        out[0] = 0;
        for (int i = 1; i < argc; i++) {
            strcat(out, argv[i]);
            strcat(out, ";");
        }
        output(out);
        return 0;
    }
    if (strncmp(text, "net:", 4) == 0) return network(text + 4);
    if (strcmp(text, "listen") == 0) {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(80)};
        int fd = faasm_socket(AF_INET, SOCK_STREAM, 0);
        snprintf(out, sizeof out, "bind %d listen %d", faasm_bind(fd, (struct sockaddr *)&addr,
                 sizeof addr), faasm_listen(fd, 1));
        output(out);
        return 0;
    }
    if (strcmp(text, "fail") == 0) {
        printf("failing with 5\n");
        return 5;
    }
    return 3;
}
