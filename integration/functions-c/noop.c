/* Faasm's "noop" demo as Faasm has it: a main and nothing else, no faasm/ header. It is a
   Faasm-API function because it defines main. */
int main(int argc, char *argv[]) {
    (void)argc;
    (void)argv;
    return 0;
}
