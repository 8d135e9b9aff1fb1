# Python calling other languages' functions by name: the Rust testkit's `upper`.
import fwasm


def handle(request):
    child = fwasm.chain("upper", request.body)
    code = fwasm.await_call(child)
    return b"%d %s" % (code, fwasm.call_output(child))
