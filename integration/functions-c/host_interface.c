/* A Faasm function written to Faasm's raw host interface and its shared-memory and migration
 * headers, built with `fwasm build`: echoes its input through __faasm_read_input and
 * __faasm_write_output, after a migration point and an atomic increment. */
#include <faasm/host_interface.h>
#include <faasm/migrate.h>
#include <faasm/shared_mem.h>

#include <stdio.h>

static int counter = 0;

static void resume(int arg) { counter = arg; }

int main(void) {
    __faasm_migrate_point(resume, 40);
    FAASM_ATOMIC_INCR(counter);
    FAASM_ATOMIC_INCR_BY(counter, 2);
    int total = 0;
    FAASM_REDUCE(total, FAASM_TYPE_INT, FAASM_OP_SUM);
    FAASM_CRITICAL_LOCAL(total += counter);
    static unsigned char input[256];
    long size = __faasm_read_input(NULL, 0);
    if (size >= (long)sizeof input) return 2;
    long got = __faasm_read_input(input, size);
    static char out[512];
    snprintf(out, sizeof out, "%.*s %d %d", (int)got, (const char *)input, total,
             __faasm_conf_flag("ALWAYS_ON"));
    __faasm_write_output((const unsigned char *)out, 0);
    return 0;
}
