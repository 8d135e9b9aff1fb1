/*
 * MPI micro-benchmarks, timed inside the world with MPI_Wtime (BENCHMARKS.md, "MPI"). Input:
 *
 *   pingpong N BYTES   ranks 0 and 1 bounce a message of BYTES N times (after 10 unmeasured);
 *                      rank 0 outputs the mean round trip in µs and the bandwidth of one way
 *   self N BYTES       rank 0 sends N messages of BYTES to itself and receives each: the same
 *                      imports with no other rank to wake (the floor of a round trip)
 *   allreduce N        every rank runs N Allreduces of one int (after 10 unmeasured); rank 0
 *                      outputs the mean µs per Allreduce
 *
 * Build: fwasm build bench/mpi_bench.c -o /tmp/mpi_bench.wasm
 */
#include <mpi.h>
#include <faasm/faasm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[256];

static void pingpong(int rank, int n, int bytes) {
    char *buf = calloc(bytes > 0 ? bytes : 1, 1);
    double start = 0;
    for (int i = -10; i < n; i++) {
        if (i == 0) start = MPI_Wtime();
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    double round_trip = (MPI_Wtime() - start) / n;
    snprintf(out, sizeof out, "round trip %.1f us, %.3f GB/s one way", round_trip * 1e6,
             bytes / (round_trip / 2) / 1e9);
    free(buf);
}

static void self_send(int n, int bytes) {
    char *buf = calloc(bytes > 0 ? bytes : 1, 1);
    double start = 0;
    for (int i = -10; i < n; i++) {
        if (i == 0) start = MPI_Wtime();
        MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    double round_trip = (MPI_Wtime() - start) / n;
    snprintf(out, sizeof out, "send and receive %.1f us, %.3f GB/s", round_trip * 1e6,
             bytes / round_trip / 1e9);
    free(buf);
}

static void allreduce(int rank, int n) {
    int value = rank, sum = 0;
    double start = 0;
    for (int i = -10; i < n; i++) {
        if (i == 0) start = MPI_Wtime();
        MPI_Allreduce(&value, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    }
    snprintf(out, sizeof out, "allreduce %.1f us (sum %d)", (MPI_Wtime() - start) / n * 1e6,
             sum);
}

int main(int argc, char **argv) {
    char input[128] = {0};
    faasmGetInput((uint8_t *)input, sizeof input - 1);
    MPI_Init(&argc, &argv);
    int rank, size, n = 0, bytes = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char what[32] = {0};
    sscanf(input, "%31s %d %d", what, &n, &bytes);
    if (strcmp(what, "pingpong") == 0 && size >= 2) {
        pingpong(rank, n, bytes);
    } else if (strcmp(what, "self") == 0) {
        if (rank == 0) self_send(n, bytes);
    } else if (strcmp(what, "allreduce") == 0) {
        allreduce(rank, n);
    } else {
        snprintf(out, sizeof out, "unknown benchmark: %s", input);
    }
    MPI_Finalize();
    if (rank == 0) faasmSetOutput((uint8_t *)out, strlen(out));
    return 0;
}
