/*
 * Faasm API, state: adds one to the user's "counter" value (decimal text, missing = 0) under
 * the global write lock, so concurrent calls on any executors never lose an increment.
 * Outputs the new value, e.g. "1" for the first call.
 */
#include <faasm/faasm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "counter"

int main(void) {
    faasmLockStateGlobalWrite(KEY);
    faasmPullState(KEY, 0);

    char text[32] = {0};
    long size = faasmReadState(KEY, (unsigned char *)text, sizeof text - 1);
    long value = size > 0 ? strtol(text, NULL, 10) : 0;

    value += 1;
    int len = snprintf(text, sizeof text, "%ld", value);
    faasmWriteState(KEY, (const uint8_t *)text, len);
    faasmPushState(KEY);
    faasmUnlockStateGlobalWrite(KEY);

    faasmSetOutput((const uint8_t *)text, len);
    return 0;
}
