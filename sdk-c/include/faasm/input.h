/* Faasm's C++ input/output helpers (namespace faasm). */
#ifndef FAASM_INPUT_H
#define FAASM_INPUT_H

#include <stdlib.h>
#include <string.h>

#include "faasm/core.h"

#ifdef __cplusplus
namespace faasm {

/* The input as a NUL-terminated string, or defaultValue if the input is empty. */
inline const char *getStringInput(const char *defaultValue) {
    return fwasm_faasm_string_input(defaultValue);
}

/* Sets the output to the C string val. */
inline void setStringOutput(const char *val) {
    faasmSetOutput(reinterpret_cast<const uint8_t *>(val), static_cast<long>(strlen(val)));
}

/* The input's first sizeof(T) bytes as a T (zeros past the end of a shorter input), or
 * defaultValue if the input is empty. T must be trivially copyable. */
template <typename T> T getTypedInput(T defaultValue) {
    if (faasmGetInputSize() == 0) return defaultValue;
    T value{};
    faasmGetInput(reinterpret_cast<uint8_t *>(&value), static_cast<long>(sizeof(T)));
    return value;
}

/* The input as a decimal integer (text), or defaultValue if it is empty or not a number. */
inline int getIntInput(int defaultValue = 0) {
    const char *text = fwasm_faasm_string_input(nullptr);
    if (!text) return defaultValue;
    char *end = nullptr;
    long value = strtol(text, &end, 10);
    return end == text ? defaultValue : static_cast<int>(value);
}

} // namespace faasm
#endif

#endif /* FAASM_INPUT_H */
