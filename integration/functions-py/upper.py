# A Python child for a C parent (chain_named.c chains chain_named_b by name).
from pyfaasm.core import get_input, set_output


def faasm_main():
    set_output(get_input().upper())
