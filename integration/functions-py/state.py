# Faasm's two-tier state from Python: whole values, offsets, push and pull, and the older
# names. The input picks the step: "write" or "read".
from pyfaasm.core import (
    get_input, pull_state, push_state, push_state_partial, read_input, read_state,
    read_state_offset, read_state_size, set_output, write_output, write_state,
    write_state_offset,
)

KEY = "pyStateTest"


def write():
    write_state(KEY, b"0123456789")
    push_state(KEY)
    write_state_offset(KEY, 10, 2, b"999")
    push_state_partial(KEY)
    write_output(b"written")


def read():
    pull_state(KEY, 10)
    size = read_state_size(KEY)
    whole = read_state(KEY, size)
    middle = read_state_offset(KEY, size, 1, 4)
    past_end = read_state_offset(b"pyStateTest", size, 8, 4)
    write_state_offset("pyStateGrown", 6, 0, b"ab")
    grown = read_state("pyStateGrown", 6)
    set_output(b"|".join([str(size).encode(), whole, middle, past_end, grown]))


def faasm_main():
    step = get_input() or read_input(0)
    {b"write": write, b"read": read}[step]()
