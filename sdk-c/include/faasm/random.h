/* Faasm's random helpers (C++). One engine per module, seeded from the host's randomness
 * (WASI random_get) on first use, so each call draws its own sequence (on Faasm the engine is
 * seeded at start-up, before its snapshot, so every call draws the same one); randomFloat
 * seeds a fresh engine each time, as Faasm does. A function whose zygote draws from the
 * engine leaves it in its snapshot: every call then continues from the same state. */
#ifndef FAASM_RANDOM_H
#define FAASM_RANDOM_H

#ifdef __cplusplus
#include <algorithm>
#include <cstddef>
#include <random>
#include <string>

namespace faasm {

inline std::mt19937 &randomEngine() {
    static std::mt19937 engine{std::random_device{}()};
    return engine;
}

/* A uniform integer in [iStart, iEnd], both included. */
inline int randomInteger(int iStart, int iEnd) {
    std::uniform_int_distribution<int> pick(iStart, iEnd);
    return pick(randomEngine());
}

/* A uniform float in [0, 1). */
inline float randomFloat() {
    std::mt19937 engine{std::random_device{}()};
    std::uniform_real_distribution<float> pick(0.0f, 1.0f);
    return pick(engine);
}

inline void shuffleArray(int *arr, size_t len) { std::shuffle(arr, arr + len, randomEngine()); }

/* new int[n] holding 0 .. n-1 in random order. */
inline int *randomIntRange(int n) {
    int *range = new int[n];
    for (int i = 0; i < n; i++) range[i] = i;
    shuffleArray(range, static_cast<size_t>(n));
    return range;
}

/* len characters drawn from 1-9, A-Z and a-z. */
inline std::string randomString(int len) {
    static const char symbols[] = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::uniform_int_distribution<int> pick(0, static_cast<int>(sizeof(symbols)) - 2);
    std::string out;
    out.reserve(static_cast<size_t>(len));
    for (int i = 0; i < len; i++) out.push_back(symbols[pick(randomEngine())]);
    return out;
}

} // namespace faasm
#endif

#endif /* FAASM_RANDOM_H */
