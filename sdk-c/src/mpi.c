/*
 * The objects mpi.h's handles point at, with the ids (and datatype sizes on wasm32) the host
 * reads, as Faasm numbers them. The MPI functions themselves are host imports.
 */
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

struct fwasm_mpi_comm fwasm_mpi_comm_world = {1};
struct fwasm_mpi_comm fwasm_mpi_comm_null = {2};
struct fwasm_mpi_info fwasm_mpi_info_null = {1};

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
