// Native fwasm API in C++: replies "Hello, <input>!".
#include <fwasm.h>

#include <string>

void fwasm_handle_request(const fwasm_request *req, fwasm_response *res) {
    std::string name(reinterpret_cast<const char *>(req->body), req->body_len);
    std::string greeting = "Hello, " + name + "!";
    fwasm_response_add_header(res, "content-type", "text/plain");
    fwasm_response_set_body(res, greeting.data(), greeting.size());
}
