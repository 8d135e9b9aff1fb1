# Each way a script fails, picked by its input.
from pyfaasm.core import get_input


def faasm_main():
    what = get_input()
    if what == b"raise":
        inner()
    if what == b"zlib":
        import zlib  # noqa: F401 (not built for WebAssembly)
    if what == b"exit":
        return 3
    if what == b"loop":
        while True:
            pass
    return 0


def inner():
    raise RuntimeError("something went wrong")
