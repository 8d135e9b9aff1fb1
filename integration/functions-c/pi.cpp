/* A Monte Carlo estimate of pi as Faasm's demos make it: main chains four workers by function
 * pointer with faasmChainBatch; each draws points with faasm::randomFloat and appends how many
 * fell inside the quarter circle to state; main adds them up. Outputs "pi ok 3.14..." when
 * the estimate is within 0.05 (over 80,000 points the error's deviation is about 0.006). */
#include <faasm/faasm.h>
#include <faasm/input.h>
#include <faasm/random.h>

#include <cmath>
#include <cstdio>
#include <cstring>

static const int WORKERS = 4;
static const int POINTS = 20000;

int worker() {
    int points = faasm::getIntInput();
    int inside = 0;
    for (int i = 0; i < points; i++) {
        float x = faasm::randomFloat(), y = faasm::randomFloat();
        inside += x * x + y * y <= 1.0f;
    }
    faasmAppendState("pi_inside", BYTES(&inside), sizeof inside);
    return 0;
}

int main() {
    faasmClearAppendedState("pi_inside");
    char points[16];
    snprintf(points, sizeof points, "%d", POINTS);
    if (faasmChainBatch(worker, points, WORKERS) != 0) return 1;
    int inside[WORKERS];
    faasmReadAppendedState("pi_inside", BYTES(inside), sizeof inside, WORKERS);
    long total = 0;
    for (int i = 0; i < WORKERS; i++) total += inside[i];
    double pi = 4.0 * (double)total / (double)(WORKERS * POINTS);
    char out[64];
    snprintf(out, sizeof out, "pi %s %.3f", std::fabs(pi - M_PI) < 0.05 ? "ok" : "off", pi);
    faasmSetOutput(out, (long)strlen(out));
    return 0;
}
