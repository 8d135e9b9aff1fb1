/* Faasm's state-backed array (C++): faasm::AsyncArray<T> keeps nElems elements of T in the
 * state value of a key, mapped into the function's memory; writes through operator[] are
 * flagged dirty and pushed with push(). */
#ifndef FAASM_ARRAY_H
#define FAASM_ARRAY_H

#ifdef __cplusplus
#include <cstddef>

#include "faasm/core.h"
#include "faasm/state.h"

namespace faasm {

template <typename T> class AsyncArray {
  public:
    AsyncArray(const char *key, size_t nElems)
        : key(key), nElems(nElems), bytes(nElems * sizeof(T)) {}

    /* All elements zero, in both tiers, and mapped here. */
    void zero() {
        zeroState(key, bytes);
        pullLazy();
    }

    /* Maps the value as this executor holds it (no pull from the global tier). */
    void pullLazy() {
        contents = reinterpret_cast<T *>(faasmReadStatePtr(key, static_cast<long>(bytes)));
    }

    /* Pulls the value from the global tier, then maps it. */
    void pull() {
        faasmPullState(key, static_cast<long>(bytes));
        pullLazy();
    }

    /* Pushes the elements written since the last push to the global tier. */
    void push() { faasmPushStatePartial(key); }

    T &operator[](int idx) {
        faasmFlagStateOffsetDirty(key, static_cast<long>(bytes),
                                  static_cast<long>(idx * sizeof(T)),
                                  static_cast<long>(sizeof(T)));
        return contents[idx];
    }

    T *data() { return contents; }

  private:
    const char *key;
    size_t nElems;
    size_t bytes;
    T *contents = nullptr;
};

} // namespace faasm
#endif

#endif /* FAASM_ARRAY_H */
