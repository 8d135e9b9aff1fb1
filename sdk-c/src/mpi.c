/*
 * The objects mpi.h's handles point at, with the ids (and datatype sizes on wasm32) the host
 * reads, as Faasm numbers them; and the reductions with user-defined operations, which run
 * here in the function (every other MPI function is a host import).
 */
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fwasm_mpi_comm fwasm_mpi_comm_world = {1};
struct fwasm_mpi_comm fwasm_mpi_comm_null = {2};
struct fwasm_mpi_info fwasm_mpi_info_null = {1};
struct fwasm_mpi_group fwasm_mpi_group_null = {0};

struct fwasm_mpi_datatype fwasm_mpi_int8 = {1, sizeof(int8_t)};
struct fwasm_mpi_datatype fwasm_mpi_int16 = {2, sizeof(int16_t)};
struct fwasm_mpi_datatype fwasm_mpi_int32 = {3, sizeof(int32_t)};
struct fwasm_mpi_datatype fwasm_mpi_int = {4, sizeof(int)};
struct fwasm_mpi_datatype fwasm_mpi_int64 = {5, sizeof(int64_t)};
struct fwasm_mpi_datatype fwasm_mpi_uint8 = {6, sizeof(uint8_t)};
struct fwasm_mpi_datatype fwasm_mpi_uint16 = {7, sizeof(uint16_t)};
struct fwasm_mpi_datatype fwasm_mpi_uint32 = {8, sizeof(uint32_t)};
struct fwasm_mpi_datatype fwasm_mpi_unsigned = {9, sizeof(unsigned int)};
struct fwasm_mpi_datatype fwasm_mpi_uint64 = {10, sizeof(uint64_t)};
struct fwasm_mpi_datatype fwasm_mpi_long = {11, sizeof(long)};
struct fwasm_mpi_datatype fwasm_mpi_long_long = {12, sizeof(long long)};
struct fwasm_mpi_datatype fwasm_mpi_long_long_int = {13, sizeof(long long int)};
struct fwasm_mpi_datatype fwasm_mpi_float = {14, sizeof(float)};
struct fwasm_mpi_datatype fwasm_mpi_double = {15, sizeof(double)};
/* {double value; int index}, padded to 16 bytes: MPI_MAXLOC's and MPI_MINLOC's pairs. */
struct fwasm_mpi_datatype fwasm_mpi_double_int = {16, 16};
struct fwasm_mpi_datatype fwasm_mpi_char = {17, sizeof(char)};
struct fwasm_mpi_datatype fwasm_mpi_c_bool = {18, sizeof(bool)};
struct fwasm_mpi_datatype fwasm_mpi_byte = {19, 1};
struct fwasm_mpi_datatype fwasm_mpi_datatype_null = {20, 1};

struct fwasm_mpi_op fwasm_mpi_max = {1};
struct fwasm_mpi_op fwasm_mpi_min = {2};
struct fwasm_mpi_op fwasm_mpi_sum = {3};
struct fwasm_mpi_op fwasm_mpi_prod = {4};
struct fwasm_mpi_op fwasm_mpi_land = {5};
struct fwasm_mpi_op fwasm_mpi_lor = {6};
struct fwasm_mpi_op fwasm_mpi_band = {7};
struct fwasm_mpi_op fwasm_mpi_bor = {8};
struct fwasm_mpi_op fwasm_mpi_maxloc = {9};
struct fwasm_mpi_op fwasm_mpi_minloc = {10};

/* The host's reductions, for the built-in operations. */
#define HOST(name) __attribute__((import_module("env"), import_name(#name)))
HOST(MPI_Reduce) int fwasm_mpi_host_reduce(const void *, void *, int, MPI_Datatype, MPI_Op, int,
                                           MPI_Comm);
HOST(MPI_Allreduce) int fwasm_mpi_host_allreduce(const void *, void *, int, MPI_Datatype, MPI_Op,
                                                 MPI_Comm);
HOST(MPI_Scan) int fwasm_mpi_host_scan(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm);
HOST(MPI_Reduce_scatter) int fwasm_mpi_host_reduce_scatter(const void *, void *, const int *,
                                                           MPI_Datatype, MPI_Op, MPI_Comm);

/* The id of every user-defined operation: the host refuses it, so a reduction that reaches the
 * host with one says so. */
#define USER_OP_ID 100

int MPI_Op_create(MPI_User_function *function, int commute, MPI_Op *op) {
    struct fwasm_mpi_op *made = malloc(sizeof *made);
    if (made == NULL || function == NULL) {
        free(made);
        return MPI_ERR_OTHER;
    }
    made->id = USER_OP_ID;
    made->function = function;
    made->commute = commute;
    *op = made;
    return MPI_SUCCESS;
}

int MPI_Op_free(MPI_Op *op) {
    if ((*op)->function != NULL) free(*op);
    *op = NULL;
    return MPI_SUCCESS;
}

/* Every rank's `bytes` at `mine`, in rank order: to every rank (root < 0) or to `root` alone
 * (NULL elsewhere). */
static char *every_rank(const void *mine, int bytes, int root, MPI_Comm comm, int *size) {
    int rank;
    MPI_Comm_size(comm, size);
    MPI_Comm_rank(comm, &rank);
    char *all = NULL;
    if (root < 0 || rank == root) {
        size_t total;
        if (__builtin_mul_overflow((size_t)bytes, (size_t)*size, &total) || total == SIZE_MAX) {
            MPI_Abort(comm, MPI_ERR_OTHER);
        }
        all = malloc(total + 1);
        if (all == NULL) MPI_Abort(comm, MPI_ERR_OTHER);
    }
    if (root < 0) {
        MPI_Allgather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, comm);
    } else {
        MPI_Gather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, root, comm);
    }
    return all;
}

/* out = buffer[0] op buffer[1] op ... op buffer[n-1]: the user's function makes
 * inoutvec = invec op inoutvec, so the fold runs from the last buffer back. */
static void fold(MPI_Op op, const char *all, int bytes, int n, void *out, int count,
                 MPI_Datatype datatype) {
    memcpy(out, all + (size_t)(n - 1) * bytes, bytes);
    for (int r = n - 2; r >= 0; r--) {
        op->function((void *)(all + (size_t)r * bytes), out, &count, &datatype);
    }
}

/* count elements of datatype, in bytes; a count no buffer can hold ends the world. */
static int bytes_of(int count, MPI_Datatype datatype) {
    int size, bytes;
    MPI_Type_size(datatype, &size);
    if (count < 0 || __builtin_mul_overflow(count, size, &bytes)) {
        MPI_Abort(MPI_COMM_WORLD, MPI_ERR_OTHER);
    }
    return bytes;
}

int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               int root, MPI_Comm comm) {
    if (op->function == NULL) {
        return fwasm_mpi_host_reduce(sendbuf, recvbuf, count, datatype, op, root, comm);
    }
    int bytes = bytes_of(count, datatype), size;
    MPI_Comm_size(comm, &size);
    if (root < 0 || root >= size) MPI_Abort(comm, MPI_ERR_OTHER);
    const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    char *all = every_rank(mine, bytes, root, comm, &size);
    if (all != NULL) {
        fold(op, all, bytes, size, recvbuf, count, datatype);
        free(all);
    }
    return MPI_SUCCESS;
}

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                  MPI_Op op, MPI_Comm comm) {
    if (op->function == NULL) {
        return fwasm_mpi_host_allreduce(sendbuf, recvbuf, count, datatype, op, comm);
    }
    int bytes = bytes_of(count, datatype), size;
    const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    char *all = every_rank(mine, bytes, -1, comm, &size);
    fold(op, all, bytes, size, recvbuf, count, datatype);
    free(all);
    return MPI_SUCCESS;
}

int MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
             MPI_Comm comm) {
    if (op->function == NULL) {
        return fwasm_mpi_host_scan(sendbuf, recvbuf, count, datatype, op, comm);
    }
    int bytes = bytes_of(count, datatype), size, rank;
    MPI_Comm_rank(comm, &rank);
    const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    char *all = every_rank(mine, bytes, -1, comm, &size);
    fold(op, all, bytes, rank + 1, recvbuf, count, datatype);
    free(all);
    return MPI_SUCCESS;
}

int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int *recvcounts,
                       MPI_Datatype datatype, MPI_Op op, MPI_Comm comm) {
    if (op->function == NULL) {
        return fwasm_mpi_host_reduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, comm);
    }
    int size, rank, total = 0, before = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    for (int r = 0; r < size; r++) {
        if (recvcounts[r] < 0 || __builtin_add_overflow(total, recvcounts[r], &total)) {
            MPI_Abort(comm, MPI_ERR_OTHER);
        }
        if (r < rank) before += recvcounts[r];
    }
    int bytes = bytes_of(total, datatype), unit = bytes_of(1, datatype);
    const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    char *all = every_rank(mine, bytes, -1, comm, &size);
    char *reduced = malloc((size_t)bytes + 1);
    if (reduced == NULL) MPI_Abort(comm, MPI_ERR_OTHER);
    fold(op, all, bytes, size, reduced, total, datatype);
    memcpy(recvbuf, reduced + (size_t)before * unit, (size_t)recvcounts[rank] * unit);
    free(reduced);
    free(all);
    return MPI_SUCCESS;
}

/* Sub-communicators and groups, over fwasm's own imports (Faasm has none). The host writes a
 * new communicator as {context, size, its world ranks}; context 0 means this rank is in none. */
#define OWN(name) __attribute__((import_module("env"), import_name(#name)))
OWN(fwasm_mpi_comm_split) int fwasm_mpi_comm_split(MPI_Comm, int, int, int *, int);
OWN(fwasm_mpi_comm_create) int fwasm_mpi_comm_create(MPI_Comm, int, int *, int);
OWN(fwasm_mpi_comm_group) int fwasm_mpi_comm_group(MPI_Comm, int *);
OWN(fwasm_mpi_group_incl) int fwasm_mpi_group_incl(int, int, const int *, int *);
OWN(fwasm_mpi_group_size) int fwasm_mpi_group_size(int, int *);
OWN(fwasm_mpi_group_rank) int fwasm_mpi_group_rank(int, int *);
OWN(fwasm_mpi_group_free) int fwasm_mpi_group_free(int);

/* Room for what the host writes of a new communicator made from `comm`. */
static int *landing(MPI_Comm comm, int *bytes) {
    int size;
    MPI_Comm_size(comm, &size);
    *bytes = (int)sizeof(int) * (2 + size);
    int *out = malloc((size_t)*bytes);
    if (out == NULL) MPI_Abort(comm, MPI_ERR_OTHER);
    return out;
}

/* The handle of the communicator that landed in `out`. */
static int handle_of(MPI_Comm comm, int *out, MPI_Comm *newcomm) {
    if (out[0] == 0) {
        *newcomm = MPI_COMM_NULL;
    } else {
        struct fwasm_mpi_comm *made = malloc(sizeof *made);
        if (made == NULL) MPI_Abort(comm, MPI_ERR_OTHER);
        made->id = out[0];
        *newcomm = made;
    }
    free(out);
    return MPI_SUCCESS;
}

int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm) {
    int bytes, *out = landing(comm, &bytes);
    int err = fwasm_mpi_comm_split(comm, color, key, out, bytes);
    if (err != MPI_SUCCESS) {
        free(out);
        return err;
    }
    return handle_of(comm, out, newcomm);
}

int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm) {
    int bytes, *out = landing(comm, &bytes);
    int err = fwasm_mpi_comm_create(comm, group->id, out, bytes);
    if (err != MPI_SUCCESS) {
        free(out);
        return err;
    }
    return handle_of(comm, out, newcomm);
}

/* A group handle for the host's group `id`. */
static int group_handle(int id, MPI_Group *group) {
    struct fwasm_mpi_group *made = malloc(sizeof *made);
    if (made == NULL) return MPI_ERR_OTHER;
    made->id = id;
    *group = made;
    return MPI_SUCCESS;
}

int MPI_Comm_group(MPI_Comm comm, MPI_Group *group) {
    int id, err = fwasm_mpi_comm_group(comm, &id);
    return err != MPI_SUCCESS ? err : group_handle(id, group);
}

int MPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup) {
    int id, err = fwasm_mpi_group_incl(group->id, n, ranks, &id);
    return err != MPI_SUCCESS ? err : group_handle(id, newgroup);
}

int MPI_Group_size(MPI_Group group, int *size) { return fwasm_mpi_group_size(group->id, size); }

int MPI_Group_rank(MPI_Group group, int *rank) { return fwasm_mpi_group_rank(group->id, rank); }

int MPI_Group_free(MPI_Group *group) {
    if (*group != MPI_GROUP_NULL) {
        fwasm_mpi_group_free((*group)->id);
        free(*group);
        *group = MPI_GROUP_NULL;
    }
    return MPI_SUCCESS;
}
