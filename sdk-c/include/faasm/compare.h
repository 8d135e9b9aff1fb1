/* Faasm's array comparison helper (C++). */
#ifndef FAASM_COMPARE_H
#define FAASM_COMPARE_H

#ifdef __cplusplus
#include <cstdio>

#include "faasm/print.h"

namespace faasm {

/* true if the first len elements of a and b are equal; else prints where they first differ
 * and both arrays, and returns false. */
template <typename T> bool compareArrays(T *a, T *b, int len) {
    for (int i = 0; i < len; i++) {
        if (!(a[i] == b[i])) {
            std::printf("Arrays differ at %i: ", i);
            printArray(a, static_cast<size_t>(len));
            std::printf(" != ");
            printArray(b, static_cast<size_t>(len));
            std::printf("\n");
            return false;
        }
    }
    return true;
}

} // namespace faasm
#endif

#endif /* FAASM_COMPARE_H */
