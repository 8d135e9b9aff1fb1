// A Faasm C++ function whose zygote builds a 4 MiB lookup table, the costly start-up a
// snapshot spares every call. The input is an index (decimal; 12345 when empty). Each call
// checks the table is as the zygote left it, then writes over some of it: it outputs
// "table[i]=<entry>" and returns 0 when it saw the zygote's table and not an earlier call's
// writes, else outputs what it saw and returns 1.
#include <faasm/faasm.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static const uint32_t entries = 1u << 20;
static uint32_t table[entries];
static int built = 0;

static uint32_t entry(uint32_t i) { return i * 2654435761u; }

FAASM_ZYGOTE() {
    for (uint32_t i = 0; i < entries; i++) {
        table[i] = entry(i);
    }
    built += 1;
    return 0;
}

int main() {
    char input[16] = {0};
    long size = faasmGetInputSize();
    if (size > 0 && size < static_cast<long>(sizeof input)) {
        faasmGetInput(reinterpret_cast<uint8_t *>(input), size);
    }
    uint32_t i = size > 0 ? static_cast<uint32_t>(strtoul(input, nullptr, 10)) % entries : 12345;
    bool fresh = built == 1 && table[i] == entry(i) && table[0] == entry(0) &&
                 table[entries - 1] == entry(entries - 1);
    char out[96];
    if (fresh) {
        snprintf(out, sizeof out, "table[%u]=%u", i, table[i]);
    } else {
        snprintf(out, sizeof out, "stale: built=%d table[%u]=%u", built, i, table[i]);
    }
    // What this call writes is its own.
    table[i] = 0;
    table[0] = 1;
    table[entries - 1] = 0;
    built += 1;
    faasmSetOutput(out, static_cast<long>(strlen(out)));
    return fresh ? 0 : 1;
}
