/* Faasm's main header: include this in a Faasm function. See faasm/core.h. */
#ifndef FAASM_FAASM_H
#define FAASM_FAASM_H

#include "faasm/core.h"

/* Older Faasm sources declare their entry point and chainable functions with these. */
#define FAASM_MAIN_FUNC() int main(int argc, char *argv[])
#define FAASM_FUNC(name, idx) int name()

#endif /* FAASM_FAASM_H */
