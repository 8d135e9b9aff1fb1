/* Faasm's timing helpers. FAASM_PROF_START(name) / FAASM_PROF_END(name) time a stretch with
 * clock() and print "TIME: name <ms>" when WASM_PROF is 1 (as on Faasm, they do nothing in a
 * wasm build otherwise). faasm::getSecondsSinceEpoch() reads the wall clock. */
#ifndef FAASM_TIME_H
#define FAASM_TIME_H

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#if defined(WASM_PROF) && WASM_PROF == 1
#define FAASM_PROF_START(name) clock_t name = clock();
#define FAASM_PROF_END(name)                                                                       \
    printf("TIME: %s %f\n", #name, (double)(clock() - name) * 1000.0 / CLOCKS_PER_SEC);
#else
#define FAASM_PROF_START(name)
#define FAASM_PROF_END(name)
#endif

#ifdef __cplusplus
namespace faasm {

inline double getSecondsSinceEpoch() {
    struct timeval now;
    gettimeofday(&now, nullptr);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_usec) / 1e6;
}

} // namespace faasm
#endif

#endif /* FAASM_TIME_H */
