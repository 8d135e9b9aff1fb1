# Faasm's echo: the input back as output (the input's length through get_input_len).
from pyfaasm.core import get_input_len, read_input, write_output


def faasm_main():
    data = read_input(get_input_len())
    write_output(data if data else b"Nothing to echo")
