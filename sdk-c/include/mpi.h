/*
 * mpi.h: MPI for fwasm functions in C and C++, with the types, constants and handle layouts of
 * Faasm's MPI, so an MPI program written for Faasm builds unchanged (`fwasm build`) and a
 * binary built by Faasm's toolchain runs on fwasm. Every MPI function is a host import from
 * module `env`; this header's objects (communicators, datatypes, operations) live in the
 * function's own memory (sdk-c/src/mpi.c).
 *
 * Run a function as a world of N ranks with `fwasm invoke USER/NAME --mpi N` (or Faasm's
 * `mpi_world_size`): the call is rank 0; its MPI_Init starts ranks 1..N-1 as calls of the same
 * function with the same input. Errors are fatal (MPI_ERRORS_ARE_FATAL): an MPI call that
 * cannot do what it is asked fails the rank's call with the reason, and ends the world.
 *
 * User-defined operations (MPI_Op_create) are applied in the function itself: MPI_Reduce,
 * MPI_Allreduce, MPI_Scan and MPI_Reduce_scatter with one gather every rank's buffer and fold
 * them in rank order with the user's function (sdk-c/src/mpi.c); the built-in operations are
 * applied by the host.
 *
 * One-sided communication is active target (MPI_Win_fence): puts and gets complete at the next
 * fence. Not provided (using them is a compile-time error naming them): passive target
 * (MPI_Win_lock, MPI_Win_unlock) and MPI_Accumulate.
 */
#ifndef FWASM_MPI_H
#define FWASM_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Handles point at these objects; the host reads their ids (and a datatype's size). */
struct fwasm_mpi_comm { int id; };
struct fwasm_mpi_datatype { int id; int size; };

typedef void MPI_User_function(void *invec, void *inoutvec, int *len,
                               struct fwasm_mpi_datatype **datatype);

/* A built-in operation is its id (1 to 10); a user-defined one (id 100) carries its function,
 * which the host never calls. */
struct fwasm_mpi_op {
    int id;
    MPI_User_function *function;
    int commute;
};
struct fwasm_mpi_info { int id; };
struct fwasm_mpi_group { int id; };
struct fwasm_mpi_message { int id; };
/* Faasm's window object: the host fills it in at MPI_Win_create. */
struct fwasm_mpi_win {
    int worldId;
    int rank;
    int size;
    void *basePtr;
    int dispUnit;
};
struct fwasm_mpi_request;

typedef struct fwasm_mpi_comm *MPI_Comm;
typedef struct fwasm_mpi_datatype *MPI_Datatype;
typedef struct fwasm_mpi_op *MPI_Op;
typedef struct fwasm_mpi_info *MPI_Info;
typedef struct fwasm_mpi_group *MPI_Group;
typedef struct fwasm_mpi_message *MPI_Message;
typedef struct fwasm_mpi_win *MPI_Win;
/* The host writes the request's id into the variable itself. */
typedef struct fwasm_mpi_request *MPI_Request;

typedef ptrdiff_t MPI_Aint;
typedef int MPI_Fint;
typedef long MPI_Offset;

/* 16 bytes: source, tag, error, and the received size in bytes. */
typedef struct {
    int MPI_SOURCE;
    int MPI_TAG;
    int MPI_ERROR;
    int bytesSize;
} MPI_Status;


#define MPI_VERSION 3
#define MPI_SUBVERSION 1

#define MPI_SUCCESS 0
#define MPI_ERR_OTHER 1

#define MPI_ANY_SOURCE (-1)
#define MPI_ANY_TAG (-1)
#define MPI_PROC_NULL (-2)
#define MPI_UNDEFINED (-1)

#define MPI_STATUS_IGNORE ((MPI_Status *)0)
#define MPI_STATUSES_IGNORE ((MPI_Status *)0)
#define MPI_REQUEST_NULL ((MPI_Request)0)
#define MPI_BOTTOM ((void *)1)
#define MPI_IN_PLACE ((void *)2)

#define MPI_MAX_PROCESSOR_NAME 256
#define MPI_MAX_OBJECT_NAME 128
#define MPI_CART_MAX_DIMENSIONS 16
#define MPI_COMM_TYPE_SHARED 0

#define MPI_THREAD_SINGLE 0
#define MPI_THREAD_FUNNELED 1
#define MPI_THREAD_SERIALIZED 2
#define MPI_THREAD_MULTIPLE 3

extern struct fwasm_mpi_comm fwasm_mpi_comm_world, fwasm_mpi_comm_null;
#define MPI_COMM_WORLD (&fwasm_mpi_comm_world)
#define MPI_COMM_NULL (&fwasm_mpi_comm_null)

#define MPI_WIN_NULL ((MPI_Win)0)
/* MPI_Win_get_attr's keys (Faasm's numbers), and MPI_Win_fence's assertions (accepted,
 * never needed). */
#define MPI_WIN_BASE 1
#define MPI_WIN_SIZE 2
#define MPI_WIN_DISP_UNIT 3
#define MPI_WIN_CREATE_FLAVOR 4
#define MPI_WIN_MODEL 5
#define MPI_MODE_NOCHECK 1024
#define MPI_MODE_NOSTORE 2048
#define MPI_MODE_NOPUT 4096
#define MPI_MODE_NOPRECEDE 8192
#define MPI_MODE_NOSUCCEED 16384

extern struct fwasm_mpi_group fwasm_mpi_group_null;
#define MPI_GROUP_NULL (&fwasm_mpi_group_null)

extern struct fwasm_mpi_info fwasm_mpi_info_null;
#define MPI_INFO_NULL (&fwasm_mpi_info_null)

extern struct fwasm_mpi_datatype fwasm_mpi_int8, fwasm_mpi_int16, fwasm_mpi_int32, fwasm_mpi_int,
    fwasm_mpi_int64, fwasm_mpi_uint8, fwasm_mpi_uint16, fwasm_mpi_uint32, fwasm_mpi_unsigned,
    fwasm_mpi_uint64, fwasm_mpi_long, fwasm_mpi_long_long, fwasm_mpi_long_long_int,
    fwasm_mpi_float, fwasm_mpi_double, fwasm_mpi_double_int, fwasm_mpi_char, fwasm_mpi_c_bool,
    fwasm_mpi_byte, fwasm_mpi_datatype_null;
#define MPI_INT8_T (&fwasm_mpi_int8)
#define MPI_INT16_T (&fwasm_mpi_int16)
#define MPI_INT32_T (&fwasm_mpi_int32)
#define MPI_INT (&fwasm_mpi_int)
#define MPI_INT64_T (&fwasm_mpi_int64)
#define MPI_UINT8_T (&fwasm_mpi_uint8)
#define MPI_UINT16_T (&fwasm_mpi_uint16)
#define MPI_UINT32_T (&fwasm_mpi_uint32)
#define MPI_UNSIGNED (&fwasm_mpi_unsigned)
#define MPI_UINT64_T (&fwasm_mpi_uint64)
#define MPI_LONG (&fwasm_mpi_long)
#define MPI_LONG_LONG (&fwasm_mpi_long_long)
#define MPI_LONG_LONG_INT (&fwasm_mpi_long_long_int)
#define MPI_FLOAT (&fwasm_mpi_float)
#define MPI_DOUBLE (&fwasm_mpi_double)
#define MPI_DOUBLE_INT (&fwasm_mpi_double_int)
#define MPI_CHAR (&fwasm_mpi_char)
#define MPI_C_BOOL (&fwasm_mpi_c_bool)
#define MPI_BYTE (&fwasm_mpi_byte)
#define MPI_DATATYPE_NULL (&fwasm_mpi_datatype_null)

extern struct fwasm_mpi_op fwasm_mpi_max, fwasm_mpi_min, fwasm_mpi_sum, fwasm_mpi_prod,
    fwasm_mpi_land, fwasm_mpi_lor, fwasm_mpi_band, fwasm_mpi_bor, fwasm_mpi_maxloc,
    fwasm_mpi_minloc;
#define MPI_MAX (&fwasm_mpi_max)
#define MPI_MIN (&fwasm_mpi_min)
#define MPI_SUM (&fwasm_mpi_sum)
#define MPI_PROD (&fwasm_mpi_prod)
#define MPI_LAND (&fwasm_mpi_land)
#define MPI_LOR (&fwasm_mpi_lor)
#define MPI_BAND (&fwasm_mpi_band)
#define MPI_BOR (&fwasm_mpi_bor)
#define MPI_MAXLOC (&fwasm_mpi_maxloc)
#define MPI_MINLOC (&fwasm_mpi_minloc)

#define FWASM_MPI(name) __attribute__((import_module("env"), import_name(#name))) name
#define FWASM_MPI_MISSING(what) \
    __attribute__((unavailable(what " is not provided by fwasm's MPI (see mpi.h)")))

int FWASM_MPI(MPI_Init)(int *argc, char ***argv);
int FWASM_MPI(MPI_Init_thread)(int *argc, char ***argv, int required, int *provided);
int FWASM_MPI(MPI_Initialized)(int *flag);
int FWASM_MPI(MPI_Finalized)(int *flag);
int FWASM_MPI(MPI_Query_thread)(int *provided);
int FWASM_MPI(MPI_Get_version)(int *version, int *subversion);
int FWASM_MPI(MPI_Finalize)(void);
int FWASM_MPI(MPI_Abort)(MPI_Comm comm, int errorcode);
double FWASM_MPI(MPI_Wtime)(void);
int FWASM_MPI(MPI_Get_processor_name)(char *name, int *resultlen);

int FWASM_MPI(MPI_Comm_rank)(MPI_Comm comm, int *rank);
int FWASM_MPI(MPI_Comm_size)(MPI_Comm comm, int *size);
int FWASM_MPI(MPI_Comm_dup)(MPI_Comm comm, MPI_Comm *newcomm);
int FWASM_MPI(MPI_Comm_free)(MPI_Comm *comm);

int FWASM_MPI(MPI_Send)(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
                        MPI_Comm comm);
int FWASM_MPI(MPI_Rsend)(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
                         MPI_Comm comm);
int FWASM_MPI(MPI_Recv)(void *buf, int count, MPI_Datatype datatype, int source, int tag,
                        MPI_Comm comm, MPI_Status *status);
int FWASM_MPI(MPI_Sendrecv)(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest,
                            int sendtag, void *recvbuf, int recvcount, MPI_Datatype recvtype,
                            int source, int recvtag, MPI_Comm comm, MPI_Status *status);
int FWASM_MPI(MPI_Isend)(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
                         MPI_Comm comm, MPI_Request *request);
int FWASM_MPI(MPI_Irecv)(void *buf, int count, MPI_Datatype datatype, int source, int tag,
                         MPI_Comm comm, MPI_Request *request);
int FWASM_MPI(MPI_Wait)(MPI_Request *request, MPI_Status *status);
int FWASM_MPI(MPI_Waitall)(int count, MPI_Request requests[], MPI_Status statuses[]);
int FWASM_MPI(MPI_Waitany)(int count, MPI_Request requests[], int *index, MPI_Status *status);
int FWASM_MPI(MPI_Request_free)(MPI_Request *request);
int FWASM_MPI(MPI_Get_count)(const MPI_Status *status, MPI_Datatype datatype, int *count);
int FWASM_MPI(MPI_Probe)(int source, int tag, MPI_Comm comm, MPI_Status *status);

int FWASM_MPI(MPI_Barrier)(MPI_Comm comm);
int FWASM_MPI(MPI_Bcast)(void *buf, int count, MPI_Datatype datatype, int root, MPI_Comm comm);
int FWASM_MPI(MPI_Scatter)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                           void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
                           MPI_Comm comm);
int FWASM_MPI(MPI_Gather)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                          void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
                          MPI_Comm comm);
int FWASM_MPI(MPI_Gatherv)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                           void *recvbuf, const int *recvcounts, const int *displs,
                           MPI_Datatype recvtype, int root, MPI_Comm comm);
int FWASM_MPI(MPI_Allgather)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                             void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm);
int FWASM_MPI(MPI_Allgatherv)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                              void *recvbuf, const int *recvcounts, const int *displs,
                              MPI_Datatype recvtype, MPI_Comm comm);
/* The host's for built-in operations, sdk-c's (mpi.c) for user-defined ones. */
int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
               int root, MPI_Comm comm);
int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                  MPI_Op op, MPI_Comm comm);
int MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
             MPI_Comm comm);
int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int *recvcounts,
                       MPI_Datatype datatype, MPI_Op op, MPI_Comm comm);
int MPI_Op_create(MPI_User_function *function, int commute, MPI_Op *op);
int MPI_Op_free(MPI_Op *op);
int FWASM_MPI(MPI_Alltoall)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                            void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm);
int FWASM_MPI(MPI_Alltoallv)(const void *sendbuf, const int *sendcounts, const int *sdispls,
                             MPI_Datatype sendtype, void *recvbuf, const int *recvcounts,
                             const int *rdispls, MPI_Datatype recvtype, MPI_Comm comm);

int FWASM_MPI(MPI_Cart_create)(MPI_Comm old_comm, int ndims, const int dims[],
                               const int periods[], int reorder, MPI_Comm *comm_cart);
int FWASM_MPI(MPI_Cart_rank)(MPI_Comm comm, const int coords[], int *rank);
int FWASM_MPI(MPI_Cart_get)(MPI_Comm comm, int maxdims, int dims[], int periods[],
                            int coords[]);
int FWASM_MPI(MPI_Cart_shift)(MPI_Comm comm, int direction, int disp, int *rank_source,
                              int *rank_dest);

int FWASM_MPI(MPI_Type_size)(MPI_Datatype datatype, int *size);
int FWASM_MPI(MPI_Type_contiguous)(int count, MPI_Datatype oldtype, MPI_Datatype *newtype);
int FWASM_MPI(MPI_Type_commit)(MPI_Datatype *datatype);
int FWASM_MPI(MPI_Type_free)(MPI_Datatype *datatype);
int FWASM_MPI(MPI_Alloc_mem)(MPI_Aint size, MPI_Info info, void *baseptr);
int FWASM_MPI(MPI_Free_mem)(void *base);

int FWASM_MPI(MPI_Win_create)(void *base, MPI_Aint size, int disp_unit, MPI_Info info,
                              MPI_Comm comm, MPI_Win *win);
int FWASM_MPI(MPI_Win_fence)(int assert, MPI_Win win);
int FWASM_MPI(MPI_Put)(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                       int target_rank, MPI_Aint target_disp, int target_count,
                       MPI_Datatype target_datatype, MPI_Win win);
int FWASM_MPI(MPI_Get)(void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                       int target_rank, MPI_Aint target_disp, int target_count,
                       MPI_Datatype target_datatype, MPI_Win win);
int FWASM_MPI(MPI_Win_free)(MPI_Win *win);
int FWASM_MPI(MPI_Win_get_attr)(MPI_Win win, int win_keyval, void *attribute_val, int *flag);
int MPI_Win_lock(int lock_type, int rank, int assert, MPI_Win win)
    FWASM_MPI_MISSING("MPI_Win_lock (passive target)");
int MPI_Win_unlock(int rank, MPI_Win win) FWASM_MPI_MISSING("MPI_Win_unlock (passive target)");
int MPI_Accumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                   int target_rank, MPI_Aint target_disp, int target_count,
                   MPI_Datatype target_datatype, MPI_Op op, MPI_Win win)
    FWASM_MPI_MISSING("MPI_Accumulate");

/* Sub-communicators and groups (sdk-c's, over fwasm's own imports; Faasm has none). A new
 * communicator is collective over the one it comes from; its messages and collectives never
 * mix with another communicator's. A rank left out gets MPI_COMM_NULL. */
int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm);
int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm);
int MPI_Comm_group(MPI_Comm comm, MPI_Group *group);
int MPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup);
int MPI_Group_size(MPI_Group group, int *size);
int MPI_Group_rank(MPI_Group group, int *rank);
int MPI_Group_free(MPI_Group *group);

#ifdef __cplusplus
}
#endif

#endif /* FWASM_MPI_H */
