/* Native fwasm API, publish and subscribe: publishes its input on the topic "c-orders" and
 * replies with how many functions that started (or the status and why, when refused). */
#include <fwasm.h>
#include <stdio.h>
#include <string.h>

FWASM_HANDLER(req, res) {
    int32_t started = fwasm_publish("c-orders", req->body, req->body_len);
    char reply[256];
    if (started < 0) {
        char why[160] = {0};
        fwasm_v1_last_error(why, sizeof why - 1);
        snprintf(reply, sizeof reply, "refused %d: %s", started, why);
    } else {
        snprintf(reply, sizeof reply, "started %d", started);
    }
    fwasm_response_set_body(res, reply, strlen(reply));
}
