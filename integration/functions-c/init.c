/*
 * fwasm's C API, FWASM_INIT: the initialisation fills a table of squares and logs once per
 * executor; each call counts itself and outputs "calls=<calls this instance saw> square=<the
 * table's entry for 30>". When every call starts from the snapshot: "calls=1 square=900".
 */
#include <fwasm.h>

static int squares[1024];
static int calls;

FWASM_INIT() {
    for (int i = 0; i < 1024; i++) {
        squares[i] = i * i;
    }
    fwasm_log(FWASM_LOG_INFO, "initialised the table of squares");
}

FWASM_HANDLER(req, res) {
    (void)req;
    calls++;
    fwasm_response_printf(res, "calls=%d square=%d", calls, squares[30]);
}
