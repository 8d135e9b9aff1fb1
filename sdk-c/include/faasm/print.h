/* Faasm's array printing helper (C++): faasm::printArray writes "[a, b, c]" with printf, no
 * newline. */
#ifndef FAASM_PRINT_H
#define FAASM_PRINT_H

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <type_traits>

namespace faasm {

namespace detail {
/* Integers as %i (uint8_t too: a number, not a character), floating point as %f. */
template <typename T> void printElement(T value) {
    if constexpr (std::is_floating_point_v<T>) {
        std::printf("%f", static_cast<double>(value));
    } else {
        std::printf("%lli", static_cast<long long>(value));
    }
}
} // namespace detail

template <typename T> void printArray(T *data, size_t size) {
    std::printf("[");
    for (size_t i = 0; i < size; i++) {
        if (i > 0) std::printf(", ");
        detail::printElement(data[i]);
    }
    std::printf("]");
}

} // namespace faasm
#endif

#endif /* FAASM_PRINT_H */
