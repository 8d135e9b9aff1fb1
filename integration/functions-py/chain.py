# Chaining by function object (Faasm's chain and await_call): two children of this same
# script, each checking its input; the parent reports what they returned.
from pyfaasm.core import await_call, chain, write_output


def chain_one(data):
    if data != b"1234":
        raise ValueError(f"chain_one got {data!r}")
    return 0


def chain_two(data):
    return 0 if data == b"5678" else 3


def faasm_main():
    first = chain(chain_one, b"1234")
    second = chain(chain_two, b"5678")
    codes = (await_call(first), await_call(second))
    write_output(f"children returned {codes[0]} and {codes[1]}".encode())
    return 0 if codes == (0, 0) else 1
