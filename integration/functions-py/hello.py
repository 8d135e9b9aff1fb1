# Faasm's hello, as its Python functions are written.
import sys

from pyfaasm.core import write_output


def faasm_main():
    write_output(f"Hello! Running Python version {sys.version}".encode())
    return 0
