/* Faasm's state helpers (C++). */
#ifndef FAASM_STATE_H
#define FAASM_STATE_H

#include "faasm/core.h"

#define BIT_MASK_8 0xFF
#define BIT_MASK_32 0xFFFFFFFF

#ifdef __cplusplus
#include <cstddef>

namespace faasm {

/* Marks double number idx in a mask of 32-bit words (two words per double). */
inline void maskDouble(unsigned int *maskArray, unsigned long idx) {
    maskArray[2 * idx] |= BIT_MASK_32;
    maskArray[2 * idx + 1] |= BIT_MASK_32;
}

/* Sets the value of key to len zero bytes, in both tiers. */
inline void zeroState(const char *key, size_t len) {
    uint8_t *zeros = new uint8_t[len]();
    faasmWriteState(key, zeros, static_cast<long>(len));
    faasmPushState(key);
    delete[] zeros;
}

} // namespace faasm
#endif

#endif /* FAASM_STATE_H */
