// Faasm API in C++, including faasm/faasm.h and faasm/input.h as Faasm code does. Upload this
// one source under several names; the role a call plays comes from its function name (argv[0]):
//
//   faasm_api        The input helpers and getConfFlag. Outputs three lines:
//                      "string=<faasm::getStringInput("(none)")> int=<faasm::getIntInput(-1)>"
//                      "openblas=<OPENBLAS_NUM_THREADS, as Faasm sets it> unset=<getConfFlag of an
//                       unset variable> always=<getConfFlag of ALWAYS_ON and ALWAYS_OFF>"
//                      "flags=<getConfFlag after setenv of on, 1, true, off, 0, yes, TRUE, "">"
//                    so for the input "7": "string=7 int=7\nopenblas=1 unset=0 always=10\n
//                    flags=11100000\n".
//   faasm_api_rc     Sets the output "returning N" and returns N = faasm::getIntInput(0).
//   faasm_api_await  Chains fails() by pointer (it returns 42) and faasm_api_rc by name with
//                    this call's input, awaits each with faasmAwaitCall, and outputs
//                    "ptr=<rc> ptr_output=<faasmAwaitCallOutput's text> named=<rc>
//                     named_output=<text> unknown=<faasmAwaitCall(99)>". A failed callee's
//                    text is its failure message, which carries its output: for the input
//                    "7", "ptr=42 ptr_output=c/faasm_api_await failed with code 42: fails saw 7
//                    named=7 named_output=c/faasm_api_rc failed with code 7: returning 7
//                    unknown=7" (7: not run).
//   faasm_api_locks  Takes and releases every lock faasm/core.h declares around state reads and
//                    writes of the key "faasm_api_locks" (sequence below), while chained
//                    readers by pointer share the read locks. Outputs "local=<value read>
//                    shared_local=<what the chained reader read> global=<value read>
//                    shared_global=<...> both=<value>", and leaves the key's global value
//                    "global:<input>"; for the input "x": "local=local:x shared_local=local:x
//                    global=global:x shared_global=global:x both=global:x".
//   faasm_api_count  Adds one to the key "faasm_api_count" (decimal text, missing = 0) under
//                    the local write lock, parking in between, and outputs the new value.
//
// A lock that was not released (or a lock function that takes the wrong mode) makes a later
// lock of the same scope fail with InvalidArgument, and so the whole call. A read lock that
// excludes other readers makes the chained reader wait for this call, which waits for the
// reader: the call times out.
#include <faasm/faasm.h>
#include <faasm/input.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

static const char *LOCK_KEY = "faasm_api_locks";
static const char *COUNT_KEY = "faasm_api_count";

static void output(const std::string &text) {
    faasm::setStringOutput(text.c_str());
}

static std::string read_text(const char *key) {
    char buf[128] = {0};
    long size = faasmReadState(key, reinterpret_cast<unsigned char *>(buf), sizeof buf - 1);
    return std::string(buf, size < 0 ? 0 : size < 127 ? size : 127);
}

static void write_text(const char *key, const std::string &text) {
    faasmWriteState(key, BYTES_CONST(text.data()), static_cast<long>(text.size()));
}

// ---- faasm_api ----

static int input_and_flags() {
    std::string text = faasm::getStringInput("(none)");
    int n = faasm::getIntInput(-1);
    std::string out = "string=" + text + " int=" + std::to_string(n) + "\n";

    // Faasm's conventional environment (no settings were given at upload).
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    out += std::string("openblas=") + (threads ? threads : "(unset)");
    out += " unset=" + std::to_string(getConfFlag("FAASM_API_FLAG"));
    out += " always=" + std::to_string(getConfFlag("ALWAYS_ON")) +
           std::to_string(getConfFlag("ALWAYS_OFF")) + "\n";

    out += "flags=";
    for (const char *value : {"on", "1", "true", "off", "0", "yes", "TRUE", ""}) {
        setenv("FAASM_API_FLAG", value, 1);
        out += std::to_string(getConfFlag("FAASM_API_FLAG"));
    }
    out += "\n";
    output(out);
    return 0;
}

// ---- faasm_api_rc, faasm_api_await ----

static int returns_input() {
    int n = faasm::getIntInput(0);
    output("returning " + std::to_string(n));
    return n;
}

int fails() {
    output(std::string("fails saw ") + faasm::getStringInput(""));
    return 42;
}

static std::string await_output(unsigned int id) {
    char buf[256] = {0};
    faasmAwaitCallOutput(id, BYTES(buf), sizeof buf - 1);
    return buf;
}

static int await_codes() {
    const char *text = faasm::getStringInput("");
    long len = static_cast<long>(strlen(text));
    unsigned int ptr = faasmChain(fails, BYTES_CONST(text), len);
    unsigned int named = faasmChainNamed("faasm_api_rc", BYTES_CONST(text), len);
    unsigned int ptr_rc = faasmAwaitCall(ptr);
    unsigned int named_rc = faasmAwaitCall(named);
    std::string out = "ptr=" + std::to_string(ptr_rc) + " ptr_output=" + await_output(ptr);
    out += " named=" + std::to_string(named_rc) + " named_output=" + await_output(named);
    out += " unknown=" + std::to_string(faasmAwaitCall(99));
    output(out);
    return 0;
}

// ---- faasm_api_locks ----

// Chained by pointer while the caller holds the read lock of the same scope.
int read_under_local_read_lock() {
    faasmLockStateRead(LOCK_KEY);
    std::string value = read_text(LOCK_KEY);
    faasmUnlockStateRead(LOCK_KEY);
    output(value);
    return 0;
}

int read_under_global_read_lock() {
    faasmLockStateGlobalRead(LOCK_KEY);
    faasmPullState(LOCK_KEY, 0);
    std::string value = read_text(LOCK_KEY);
    faasmUnlockStateGlobalRead(LOCK_KEY);
    output(value);
    return 0;
}

static std::string chained_read(FaasmFuncPtr reader) {
    unsigned int id = faasmChain(reader, nullptr, 0);
    char buf[128] = {0};
    unsigned int rc = faasmAwaitCallOutput(id, BYTES(buf), sizeof buf - 1);
    if (rc != 0) return "reader failed with " + std::to_string(rc) + ": " + buf;
    return buf;
}

static int locks() {
    std::string text = faasm::getStringInput("");
    std::string out;

    // Local: write under the write lock, read under the read lock (shared with a reader).
    faasmLockStateWrite(LOCK_KEY);
    write_text(LOCK_KEY, "local:" + text);
    faasmUnlockStateWrite(LOCK_KEY);
    faasmLockStateRead(LOCK_KEY); // fails if the write lock was not released
    out += "local=" + read_text(LOCK_KEY);
    out += " shared_local=" + chained_read(read_under_local_read_lock);
    faasmUnlockStateRead(LOCK_KEY);

    // Global: write and push under the global write lock, pull and read under the read lock.
    faasmLockStateGlobalWrite(LOCK_KEY);
    faasmPullState(LOCK_KEY, 0);
    write_text(LOCK_KEY, "global:" + text);
    faasmPushState(LOCK_KEY);
    faasmUnlockStateGlobalWrite(LOCK_KEY);
    faasmLockStateGlobalRead(LOCK_KEY); // fails if the global write lock was not released
    faasmPullState(LOCK_KEY, 0);
    out += " global=" + read_text(LOCK_KEY);
    out += " shared_global=" + chained_read(read_under_global_read_lock);

    // A local and a global lock at once: the scopes are separate.
    faasmLockStateRead(LOCK_KEY); // fails if the local read lock was not released
    out += " both=" + read_text(LOCK_KEY);
    faasmUnlockStateRead(LOCK_KEY);
    faasmUnlockStateGlobalRead(LOCK_KEY);

    // Each scope's write lock again: fails if a read lock was not released.
    faasmLockStateWrite(LOCK_KEY);
    faasmLockStateGlobalWrite(LOCK_KEY);
    faasmUnlockStateGlobalWrite(LOCK_KEY);
    faasmUnlockStateWrite(LOCK_KEY);

    output(out);
    return 0;
}

// ---- faasm_api_count ----

static int count() {
    faasmLockStateWrite(COUNT_KEY);
    std::string text = read_text(COUNT_KEY);
    long value = text.empty() ? 0 : strtol(text.c_str(), nullptr, 10);
    // A global lock is a round trip to the state service, during which this call is parked
    // and others run: without the local write lock they would read the same value.
    faasmLockStateGlobalRead("faasm_api_count_gap");
    faasmUnlockStateGlobalRead("faasm_api_count_gap");
    std::string next = std::to_string(value + 1);
    write_text(COUNT_KEY, next);
    faasmUnlockStateWrite(COUNT_KEY);
    output(next);
    return 0;
}

int main(int argc, char *argv[]) {
    std::string self = argc > 0 ? argv[0] : "";
    if (self == "faasm_api") return input_and_flags();
    if (self == "faasm_api_rc") return returns_input();
    if (self == "faasm_api_await") return await_codes();
    if (self == "faasm_api_locks") return locks();
    if (self == "faasm_api_count") return count();
    output("unknown role " + self);
    return 1;
}
