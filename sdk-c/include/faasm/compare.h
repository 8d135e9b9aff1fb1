/* Faasm's array comparison helper (C++). */
#ifndef FAASM_COMPARE_H
#define FAASM_COMPARE_H

#ifdef __cplusplus
namespace faasm {

/* true if the first len elements of a and b are equal. */
template <typename T> bool compareArrays(T *a, T *b, int len) {
    for (int i = 0; i < len; i++) {
        if (!(a[i] == b[i])) return false;
    }
    return true;
}

} // namespace faasm
#endif

#endif /* FAASM_COMPARE_H */
