/* Outbound HTTP from C, as the testkit's `fetch` does it from Rust: for a body "METHOD URL
 * [BODY]", sends the request (with the header `x-test: c`) and replies "STATUS X-REPLY LENGTH
 * PREFIX" (the `x-reply` header or "-", the body's length and its first 32 bytes), or
 * "error: WHY". */
#include <fwasm.h>
#include <stdio.h>
#include <string.h>

FWASM_HANDLER(req, res) {
    char method[16] = {0}, url[512] = {0};
    int used = 0;
    sscanf((const char *)req->body, "%15s %511s %n", method, url, &used);
    const char *body = used ? (const char *)req->body + used : "";
    fwasm_header header = {"x-test", "c"};
    fwasm_http_response reply;
    int32_t status = fwasm_http_request(method, url, &header, 1, body, strlen(body), &reply);
    if (status < 0) {
        char why[512] = {0};
        fwasm_last_error(why, sizeof why);
        fwasm_response_printf(res, "error: %s", why);
        return;
    }
    const char *x_reply = fwasm_http_response_header(&reply, "X-Reply");
    size_t prefix = reply.body_len < 32 ? reply.body_len : 32;
    fwasm_response_printf(res, "%u %s %zu %.*s", reply.status, x_reply ? x_reply : "-",
                          reply.body_len, (int)prefix, (const char *)reply.body);
    fwasm_http_response_free(&reply);
}
