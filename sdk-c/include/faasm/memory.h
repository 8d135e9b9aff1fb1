/* Faasm's memory.h: on Faasm it keeps one runtime (WAMR) from shrinking linear memory at
 * load time. wasmi never does, so on fwasm it declares nothing. */
#ifndef FAASM_MEMORY_H
#define FAASM_MEMORY_H
#endif /* FAASM_MEMORY_H */
