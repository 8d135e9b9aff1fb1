# fwasm's own form: handle(request) returns the response.
import json

import fwasm


def handle(request):
    if request.path.endswith("/teapot"):
        return fwasm.Response(b"short and stout", status=418, headers={"x-kind": "teapot"})
    if request.method == "GET":
        return "no body"
    doc = request.json()
    reply = {"method": request.method, "greeting": f"Hello, {doc['name']}!",
             "header": request.headers.get("x-test", "")}
    return json.dumps(reply, sort_keys=True), 201, {"content-type": "application/json"}
