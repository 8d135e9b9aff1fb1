// Faasm API, state at offsets (as Faasm's demo/state_offset): writes 7 bytes, pushes, writes
// {5,5,5} at 0 and {6,6} at 2, pushes, pulls and reads 5 bytes at 0, which must be
// {5,5,6,6,4}. Outputs "success", or "failure" and fails with return code 1.
#include <faasm/compare.h>
#include <faasm/faasm.h>

#include <string>

int main(int argc, char *argv[]) {
    const char *key = "state_offset_example";

    uint8_t value[7] = {0, 1, 2, 3, 4, 5, 6};
    faasmWriteState(key, value, 7);
    faasmPushState(key);

    uint8_t partialA[3] = {5, 5, 5};
    faasmWriteStateOffset(key, 7, 0, partialA, 3);

    uint8_t partialB[2] = {6, 6};
    faasmWriteStateOffset(key, 7, 2, partialB, 2);
    faasmPushState(key);

    faasmPullState(key, 7);
    uint8_t expected[5] = {5, 5, 6, 6, 4};
    uint8_t actual[5];
    faasmReadStateOffset(key, 7, 0, actual, 5);

    std::string output = "success";
    bool ok = faasm::compareArrays<uint8_t>(actual, expected, 5);
    if (!ok) {
        output = "failure";
    }
    faasmSetOutput(output.c_str(), output.size());
    return ok ? 0 : 1;
}
