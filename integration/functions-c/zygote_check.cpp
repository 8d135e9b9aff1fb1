// Faasm's snapshot check (func/demo/zygote_check.cpp, in our words): the zygote adds 5 to
// globalA and 100 to globalB; every call must see exactly that (and the value a static
// constructor set), never what an earlier call wrote. main returns 0 and outputs "zygote ok"
// when it does, else 1 with the values it saw.
#include <faasm/faasm.h>

#include <cstdio>
#include <cstring>

static int globalA = 0;
static int globalB = 2;
static int constructed = 0;

struct Constructor {
    Constructor() { constructed += 1; }
};
static Constructor constructor;

FAASM_ZYGOTE() {
    globalA += 5;
    globalB += 100;
    return 0;
}

int main() {
    char out[96];
    bool fresh = globalA == 5 && globalB == 102 && constructed == 1;
    snprintf(out, sizeof out, fresh ? "zygote ok" : "A=%d B=%d constructed=%d", globalA,
             globalB, constructed);
    globalA += 1;
    globalB += 1;
    constructed += 1;
    faasmSetOutput(reinterpret_cast<const uint8_t *>(out), static_cast<long>(strlen(out)));
    return fresh ? 0 : 1;
}
