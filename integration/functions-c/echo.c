/* Native fwasm API: replies with its input. */
#include <fwasm.h>

FWASM_HANDLER(req, res) {
    fwasm_response_set_body(res, req->body, req->body_len);
}
