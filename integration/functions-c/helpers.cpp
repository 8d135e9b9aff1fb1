/* Faasm's helper library (faasm/random.h, time.h, files.h, print.h, array.h, state.h,
 * memory.h, compare.h) as Faasm functions use it: each check returns its own code if it
 * fails; the output says all passed. */
#include <faasm/array.h>
#include <faasm/compare.h>
#include <faasm/faasm.h>
#include <faasm/files.h>
#include <faasm/input.h>
#include <faasm/memory.h>
#include <faasm/print.h>
#include <faasm/random.h>
#include <faasm/state.h>
#include <faasm/time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main() {
    FAASM_PROF_START(whole)

    bool drew[3] = {false, false, false};
    for (int i = 0; i < 300; i++) {
        int r = faasm::randomInteger(3, 5);
        if (r < 3 || r > 5) return 1;
        drew[r - 3] = true;
    }
    if (!drew[0] || !drew[1] || !drew[2]) return 11; /* both ends included */
    float f = faasm::randomFloat();
    if (f < 0.0f || f >= 1.0f) return 2;
    int *range = faasm::randomIntRange(50);
    int sum = 0, inPlace = 0;
    for (int i = 0; i < 50; i++) {
        sum += range[i];
        inPlace += range[i] == i;
    }
    delete[] range;
    if (sum != 1225 || inPlace == 50) return 3; /* 0..49, shuffled */
    std::string word = faasm::randomString(12);
    if (word.size() != 12 || word.find('0') != std::string::npos) return 4;

    if (faasm::getSecondsSinceEpoch() < 1.7e9) return 5;

    faasm::AsyncArray<int> array("helpers_array", 4);
    array.zero();
    array[2] = 7;
    array.push();
    array.pull();
    if (array.data()[2] != 7 || array.data()[1] != 0) return 6;
    unsigned int mask[4] = {0, 0, 0, 0};
    faasm::maskDouble(mask, 1);
    if (mask[0] != 0 || mask[2] != BIT_MASK_32 || mask[3] != BIT_MASK_32) return 7;

    if (faasm::getFileLength("/no/such/file") != -1) return 8;
    if (faasm::readFileToString("/no/such/file") != nullptr) return 9;
    /* A shared file the test uploaded. */
    char *text = faasm::readFileToString("/data/helpers.txt");
    if (text == nullptr || std::string(text) != "shared text") return 12;
    std::free(text);
    if (faasm::getFileLength("/data/helpers.txt") != 11) return 13;

    int a[3] = {1, 2, 3};
    int b[3] = {1, 2, 3};
    int c[3] = {1, 2, 4};
    if (!faasm::compareArrays(a, b, 3) || faasm::compareArrays(a, c, 3)) return 10;
    faasm::printArray(a, 3);
    std::printf("\n");

    FAASM_PROF_END(whole)
    faasm::setStringOutput("helpers ok");
    return 0;
}
