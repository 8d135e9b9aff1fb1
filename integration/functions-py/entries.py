# Which chained entries a caller may pick, Faasm's environment, and sys.exit with a message.
import os
from shutil import rmtree  # noqa: F401 (imported: never an entry)

from pyfaasm.core import get_input, set_output


def public(data):
    wasm = os.environ.get("PYTHONWASM", "")
    set_output(b"public got " + data + b", PYTHONWASM=" + wasm.encode())


def _private(data):
    set_output(b"private")


def faasm_main():
    if get_input() == b"exit":
        raise SystemExit("leaving with a message")
