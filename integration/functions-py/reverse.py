# The other Python child of chain_named.c.
from pyfaasm.core import get_input, set_output


def faasm_main():
    set_output(get_input()[::-1])
