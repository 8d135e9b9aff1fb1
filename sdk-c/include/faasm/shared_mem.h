/*
 * Faasm's shared-memory macros for threaded functions: reductions merged across threads and
 * critical sections. A function on fwasm runs on one thread (threads and OpenMP fail the
 * build, naming the feature), so a reduction has nothing to merge and a critical section
 * nothing to exclude: the macros keep their effect on the one thread.
 */
#ifndef FAASM_SHARED_MEM_H
#define FAASM_SHARED_MEM_H

#include "faasm/host_interface.h"

/* Faasm's type and operation ids. */
#define FAASM_TYPE_RAW 0
#define FAASM_TYPE_BOOL 1
#define FAASM_TYPE_INT 2
#define FAASM_TYPE_LONG 3
#define FAASM_TYPE_FLOAT 4
#define FAASM_TYPE_DOUBLE 5

#define FAASM_OP_OVERWRITE 0
#define FAASM_OP_SUM 1
#define FAASM_OP_PRODUCT 2
#define FAASM_OP_SUBTRACT 3
#define FAASM_OP_MAX 4
#define FAASM_OP_MIN 5

#define FAASM_REDUCE(var, type, op) __faasm_sm_reduce((void *)&(var), type, op, 0)
#define FAASM_REDUCE_INNER(var, type, op) __faasm_sm_reduce((void *)&(var), type, op, 1)

#define FAASM_START_CRITICAL_LOCAL() __faasm_sm_critical_local()
#define FAASM_END_CRITICAL_LOCAL() __faasm_sm_critical_local_end()
#define FAASM_CRITICAL_LOCAL(op)                                                                   \
    do {                                                                                           \
        FAASM_START_CRITICAL_LOCAL();                                                              \
        { op; }                                                                                    \
        FAASM_END_CRITICAL_LOCAL();                                                                \
    } while (0)

#define FAASM_ATOMIC_INCR(var)                                                                     \
    do {                                                                                           \
        FAASM_REDUCE_INNER(var, FAASM_TYPE_INT, FAASM_OP_SUM);                                     \
        FAASM_CRITICAL_LOCAL((var)++);                                                             \
    } while (0)
#define FAASM_ATOMIC_INCR_BY(var, value)                                                           \
    do {                                                                                           \
        FAASM_REDUCE_INNER(var, FAASM_TYPE_INT, FAASM_OP_SUM);                                     \
        FAASM_CRITICAL_LOCAL((var) += (value));                                                    \
    } while (0)

#endif /* FAASM_SHARED_MEM_H */
