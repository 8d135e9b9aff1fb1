/*
 * MPI, as a Faasm MPI program uses it: the input names a check (and, for "barrier", a state key
 * of its own). Every rank runs the same check and fails (returns 1, saying why) if what MPI
 * gave it is wrong; rank 0 outputs "<check> ok size=<n>" and what it computed.
 *
 *   ring       each rank sends its rank to the next and receives from the previous (Send/Recv)
 *   allreduce  Allreduce SUM and MAX of rank values; Reduce to root 1 in place
 *   bcast      Bcast of 4 ints from root 1 (rank 0 with one rank)
 *   scatter    Scatter from root 0, every rank doubles its piece, Gather back (and Gatherv)
 *   alltoall   Alltoall and Allgather of rank-tagged values
 *   scan       Scan SUM of rank + 1
 *   barrier K  three rounds: append to state list K, Barrier, count the list, Barrier
 *   split      Comm_split into even and odd ranks (Allreduce, messages kept apart from the
 *              world's), Comm_dup, Comm_group + Group_incl + Comm_create of the first half
 *   rma        one-sided: Win_create, Put into every rank's window, Get the next's, fences,
 *              Win_get_attr, Win_free
 *   cart       a 1-D periodic grid: Cart_create, Cart_get, Cart_rank, Cart_shift
 *   waitall    Irecv from every other rank, Isend to each, Waitall; then Waitany
 *   probe      rank 0 sends 30 ints to the last rank, which Probes, Get_counts and Receives
 *   userop     a user-defined operation (2x2 matrix product mod 1009, which does not commute)
 *              on a contiguous type: Allreduce, Reduce to the last rank, Scan
 *   trap       rank size-1 traps after MPI_Init; the others wait in a Barrier
 *   never      ranks 0 and 1 each wait for a message from the other that neither sends
 *   hang       every rank waits for a message no rank sends (until the world breaks)
 *   abort      the last rank calls MPI_Abort(MPI_COMM_WORLD, 7)
 */
#include <faasm/faasm.h>
#include <fwasm.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;
static char out[4096];

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            printf("rank %d: ", rank);                                                          \
            printf(__VA_ARGS__);                                                                \
            printf("\n");                                                                       \
            return 1;                                                                           \
        }                                                                                       \
    } while (0)

static int ring(void) {
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, got = -1;
    MPI_Status status;
    MPI_Send(&rank, 1, MPI_INT, next, 5, MPI_COMM_WORLD);
    MPI_Recv(&got, 1, MPI_INT, prev, 5, MPI_COMM_WORLD, &status);
    CHECK(got == prev, "got %d from the ring, expected %d", got, prev);
    CHECK(status.MPI_SOURCE == prev && status.MPI_TAG == 5, "status %d/%d", status.MPI_SOURCE,
          status.MPI_TAG);
    int count = -1;
    MPI_Get_count(&status, MPI_INT, &count);
    CHECK(count == 1, "count %d", count);
    sprintf(out, "got %d", got);
    return 0;
}

static int allreduce(void) {
    int mine[2] = {rank, rank * 10}, sum[2] = {0}, max = -1;
    MPI_Allreduce(mine, sum, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&rank, &max, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int expected = size * (size - 1) / 2;
    CHECK(sum[0] == expected && sum[1] == 10 * expected, "sum %d %d", sum[0], sum[1]);
    CHECK(max == size - 1, "max %d", max);
    double value = rank + 0.5, total = 0;
    int root = size > 1 ? 1 : 0;
    if (rank == root) {
        total = value;
        MPI_Reduce(MPI_IN_PLACE, &total, 1, MPI_DOUBLE, MPI_SUM, root, MPI_COMM_WORLD);
        CHECK(total == expected + 0.5 * size, "reduced %f", total);
    } else {
        MPI_Reduce(&value, NULL, 1, MPI_DOUBLE, MPI_SUM, root, MPI_COMM_WORLD);
    }
    sprintf(out, "sum=%d max=%d", sum[0], max);
    return 0;
}

static int bcast(void) {
    int root = size > 1 ? 1 : 0, data[4] = {0};
    if (rank == root) {
        for (int i = 0; i < 4; i++) data[i] = 100 + i;
    }
    MPI_Bcast(data, 4, MPI_INT, root, MPI_COMM_WORLD);
    for (int i = 0; i < 4; i++) CHECK(data[i] == 100 + i, "data[%d] = %d", i, data[i]);
    sprintf(out, "%d %d %d %d", data[0], data[1], data[2], data[3]);
    return 0;
}

static int scatter(void) {
    int *all = malloc(2 * size * sizeof(int)), piece[2];
    for (int i = 0; i < 2 * size; i++) all[i] = rank == 0 ? i : -1;
    MPI_Scatter(all, 2, MPI_INT, piece, 2, MPI_INT, 0, MPI_COMM_WORLD);
    CHECK(piece[0] == 2 * rank && piece[1] == 2 * rank + 1, "piece %d %d", piece[0], piece[1]);
    piece[0] *= 2;
    piece[1] *= 2;
    MPI_Gather(piece, 2, MPI_INT, all, 2, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int i = 0; i < 2 * size; i++) CHECK(all[i] == 2 * i, "gathered[%d] = %d", i, all[i]);
    }
    /* Gatherv: rank r sends r + 1 copies of r, placed after a gap of one element each. */
    int mine[64], counts[64], displs[64], gathered[4096];
    for (int i = 0; i <= rank; i++) mine[i] = rank;
    int at = 0;
    for (int r = 0; r < size; r++) {
        counts[r] = r + 1;
        displs[r] = at + 1;
        at += r + 2;
    }
    memset(gathered, 0xff, sizeof gathered);
    MPI_Gatherv(mine, rank + 1, MPI_INT, gathered, counts, displs, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            CHECK(gathered[displs[r] - 1] == -1, "the gap before rank %d was written", r);
            for (int i = 0; i < counts[r]; i++)
                CHECK(gathered[displs[r] + i] == r, "gatherv: rank %d's element %d", r, i);
        }
    }
    sprintf(out, "gathered %d..%d", all[0], all[2 * size - 1]);
    return 0;
}

static int alltoall(void) {
    int *send = malloc(size * sizeof(int)), *recv = malloc(size * sizeof(int));
    for (int to = 0; to < size; to++) send[to] = 100 * rank + to;
    MPI_Alltoall(send, 1, MPI_INT, recv, 1, MPI_INT, MPI_COMM_WORLD);
    for (int from = 0; from < size; from++)
        CHECK(recv[from] == 100 * from + rank, "alltoall from %d: %d", from, recv[from]);
    int value = rank * rank;
    MPI_Allgather(&value, 1, MPI_INT, recv, 1, MPI_INT, MPI_COMM_WORLD);
    for (int from = 0; from < size; from++)
        CHECK(recv[from] == from * from, "allgather from %d: %d", from, recv[from]);
    sprintf(out, "last %d", recv[size - 1]);
    return 0;
}

static int scan(void) {
    int value = rank + 1, prefix = 0;
    MPI_Scan(&value, &prefix, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(prefix == (rank + 1) * (rank + 2) / 2, "prefix %d", prefix);
    sprintf(out, "prefix %d", prefix);
    return 0;
}

static int barrier(const char *key) {
    for (int round = 1; round <= 3; round++) {
        fwasm_state_append(key, &rank, sizeof rank);
        MPI_Barrier(MPI_COMM_WORLD);
        /* Each element: a 4-byte length, then the rank's 4 bytes. */
        int64_t bytes = fwasm_state_read_appended(key, NULL, 0);
        CHECK(bytes == (int64_t)8 * size * round, "round %d: %lld bytes appended", round,
              (long long)bytes);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    sprintf(out, "3 rounds");
    return 0;
}

/* The world rank of rank `at` of the half with world ranks of `parity`, ordered by key -rank
 * (highest world rank first). */
static int half_member(int parity, int at) {
    int highest = (size - 1) % 2 == parity ? size - 1 : size - 2;
    return highest - 2 * at;
}

static int split(void) {
    /* Even and odd world ranks, each half highest world rank first. */
    int parity = rank % 2, hrank = -1, hsize = -1;
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, parity, -rank, &half);
    CHECK(half != MPI_COMM_NULL && half != MPI_COMM_WORLD, "no half");
    MPI_Comm_rank(half, &hrank);
    MPI_Comm_size(half, &hsize);
    CHECK(hsize == (size + 1 - parity) / 2, "half of %d", hsize);
    CHECK(half_member(parity, hrank) == rank, "rank %d in the half", hrank);
    int sum = -1, expected = 0;
    for (int r = parity; r < size; r += 2) expected += r;
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, half);
    CHECK(sum == expected, "the half's sum %d, expected %d", sum, expected);
    /* A message stays in its communicator: the half's comes first, yet a receive from any rank
     * with any tag in the world takes the world's. */
    int wnext = (rank + 1) % size, wprev = (rank + size - 1) % size, got = -1;
    int hnext = (hrank + 1) % hsize, hprev = (hrank + hsize - 1) % hsize;
    int marked = 1000 + rank;
    MPI_Status status;
    MPI_Send(&marked, 1, MPI_INT, hnext, 9, half);
    MPI_Send(&rank, 1, MPI_INT, wnext, 9, MPI_COMM_WORLD);
    MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
    CHECK(got == wprev && status.MPI_SOURCE == wprev, "the world gave %d from %d", got,
          status.MPI_SOURCE);
    MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, 9, half, &status);
    CHECK(got == 1000 + half_member(parity, hprev) && status.MPI_SOURCE == hprev,
          "the half gave %d from its rank %d", got, status.MPI_SOURCE);
    /* A duplicate: the same ranks, messages of its own. */
    MPI_Comm dup;
    int drank = -1;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_rank(dup, &drank);
    CHECK(dup != MPI_COMM_WORLD && drank == rank, "dup rank %d", drank);
    MPI_Send(&marked, 1, MPI_INT, wnext, 3, dup);
    MPI_Send(&rank, 1, MPI_INT, wnext, 3, MPI_COMM_WORLD);
    MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(got == wprev, "the world gave %d, not the dup's", got);
    MPI_Recv(&got, 1, MPI_INT, wprev, 3, dup, MPI_STATUS_IGNORE);
    CHECK(got == 1000 + wprev, "the dup gave %d", got);
    /* The first half of the world's ranks, reversed, as a group and a communicator of it. */
    int n = (size + 1) / 2, ranks[64], gsize = -1, grank = -9, frank = -1;
    for (int i = 0; i < n; i++) ranks[i] = n - 1 - i;
    MPI_Group everyone, first;
    MPI_Comm_group(MPI_COMM_WORLD, &everyone);
    MPI_Group_incl(everyone, n, ranks, &first);
    MPI_Group_size(first, &gsize);
    MPI_Group_rank(first, &grank);
    CHECK(gsize == n && grank == (rank < n ? n - 1 - rank : MPI_UNDEFINED), "group %d %d", gsize,
          grank);
    MPI_Comm firsts;
    MPI_Comm_create(MPI_COMM_WORLD, first, &firsts);
    if (rank < n) {
        CHECK(firsts != MPI_COMM_NULL, "left out of its group's communicator");
        MPI_Comm_rank(firsts, &frank);
        int root = rank;
        MPI_Bcast(&root, 1, MPI_INT, 0, firsts);
        CHECK(frank == n - 1 - rank && root == n - 1, "firsts: rank %d, root %d", frank, root);
        MPI_Barrier(firsts);
    } else {
        CHECK(firsts == MPI_COMM_NULL, "given a communicator of a group it is not in");
    }
    MPI_Group_free(&first);
    MPI_Group_free(&everyone);
    CHECK(first == MPI_GROUP_NULL, "a freed group is not MPI_GROUP_NULL");
    sprintf(out, "halves %d+%d first %d", (size + 1) / 2, size / 2, n);
    return 0;
}

static int rma(void) {
    int *window = NULL, next = (rank + 1) % size, got[64], flag = 0;
    MPI_Alloc_mem((MPI_Aint)sizeof(int) * size, MPI_INFO_NULL, &window);
    for (int i = 0; i < size; i++) window[i] = -1;
    MPI_Win win;
    MPI_Win_create(window, (MPI_Aint)sizeof(int) * size, sizeof(int), MPI_INFO_NULL,
                   MPI_COMM_WORLD, &win);
    MPI_Win_fence(0, win);
    /* Every rank puts 100 + its rank into its own slot of every rank's window. */
    int mine = 100 + rank;
    for (int t = 0; t < size; t++) MPI_Put(&mine, 1, MPI_INT, t, rank, 1, MPI_INT, win);
    MPI_Win_fence(0, win);
    for (int i = 0; i < size; i++) CHECK(window[i] == 100 + i, "slot %d holds %d", i, window[i]);
    /* A store of its own shows at the next fence; a get reads the next rank's whole window. */
    window[rank] = 200 + rank;
    MPI_Win_fence(0, win);
    MPI_Get(got, size, MPI_INT, next, 0, size, MPI_INT, win);
    MPI_Win_fence(0, win);
    for (int i = 0; i < size; i++)
        CHECK(got[i] == (i == next ? 200 + next : 100 + i), "got %d in slot %d", got[i], i);
    void *base = NULL;
    MPI_Aint *bytes = NULL;
    int *unit = NULL;
    MPI_Win_get_attr(win, MPI_WIN_BASE, &base, &flag);
    CHECK(flag && base == window, "base");
    MPI_Win_get_attr(win, MPI_WIN_SIZE, &bytes, &flag);
    CHECK(flag && *bytes == (MPI_Aint)sizeof(int) * size, "size");
    MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &unit, &flag);
    CHECK(flag && *unit == (int)sizeof(int), "unit");
    MPI_Win_free(&win);
    CHECK(win == MPI_WIN_NULL, "a freed window is not MPI_WIN_NULL");
    sprintf(out, "got %d from rank %d", got[next], next);
    return 0;
}

static int cart(void) {
    int dims[1] = {size}, periods[1] = {1}, coords[1] = {-1}, got_dims[1], got_periods[1];
    MPI_Comm grid, second;
    MPI_Cart_create(MPI_COMM_WORLD, 1, dims, periods, 0, &grid);
    MPI_Cart_create(MPI_COMM_WORLD, 1, dims, periods, 0, &second);
    CHECK(grid != second && grid != MPI_COMM_WORLD, "the communicators are not distinct");
    MPI_Cart_get(grid, 1, got_dims, got_periods, coords);
    CHECK(got_dims[0] == size && got_periods[0] == 1 && coords[0] == rank, "cart_get %d %d %d",
          got_dims[0], got_periods[0], coords[0]);
    int at = -1;
    MPI_Cart_rank(grid, coords, &at);
    CHECK(at == rank, "cart_rank %d", at);
    int source = -9, dest = -9;
    MPI_Cart_shift(grid, 0, 1, &source, &dest);
    CHECK(source == (rank + size - 1) % size && dest == (rank + 1) % size, "shift %d %d", source,
          dest);
    /* The shift's neighbours are who the ring talks to. */
    int got = -1;
    MPI_Sendrecv(&rank, 1, MPI_INT, dest, 0, &got, 1, MPI_INT, source, 0, grid, MPI_STATUS_IGNORE);
    CHECK(got == source, "sendrecv got %d", got);
    sprintf(out, "source %d dest %d", source, dest);
    return 0;
}

static int waitall(void) {
    int n = size - 1, *in = calloc(size, sizeof(int)), *sent = calloc(size, sizeof(int));
    MPI_Request *requests = calloc(2 * size, sizeof(MPI_Request));
    MPI_Status *statuses = calloc(2 * size, sizeof(MPI_Status));
    int k = 0;
    for (int r = 0; r < size; r++) {
        if (r == rank) continue;
        MPI_Irecv(&in[r], 1, MPI_INT, r, 9, MPI_COMM_WORLD, &requests[k++]);
    }
    for (int r = 0; r < size; r++) {
        if (r == rank) continue;
        sent[r] = 1000 * rank + r;
        MPI_Isend(&sent[r], 1, MPI_INT, r, 9, MPI_COMM_WORLD, &requests[k++]);
    }
    MPI_Waitall(k, requests, statuses);
    for (int r = 0; r < size; r++) {
        if (r == rank) continue;
        CHECK(in[r] == 1000 * r + rank, "from %d: %d", r, in[r]);
    }
    for (int i = 0; i < n; i++) CHECK(requests[i] == MPI_REQUEST_NULL, "request %d not freed", i);
    /* Waitany: one receive from the previous rank. */
    if (size > 1) {
        int prev = (rank + size - 1) % size, next = (rank + 1) % size, got = -1, index = -1;
        MPI_Request one[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        MPI_Irecv(&got, 1, MPI_INT, prev, 3, MPI_COMM_WORLD, &one[1]);
        MPI_Send(&rank, 1, MPI_INT, next, 3, MPI_COMM_WORLD);
        MPI_Status status;
        MPI_Waitany(2, one, &index, &status);
        CHECK(index == 1 && got == prev && status.MPI_SOURCE == prev, "waitany %d %d", index, got);
    }
    sprintf(out, "%d receives", n);
    return 0;
}

static int probe(void) {
    sprintf(out, "probed");
    if (size < 2) return 0;
    int last = size - 1;
    if (rank == 0) {
        int data[30];
        for (int i = 0; i < 30; i++) data[i] = i * i;
        MPI_Send(data, 30, MPI_INT, last, 4, MPI_COMM_WORLD);
    } else if (rank == last) {
        MPI_Status status;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        int count = -1;
        MPI_Get_count(&status, MPI_INT, &count);
        CHECK(count == 30 && status.MPI_TAG == 4, "probe count %d tag %d", count, status.MPI_TAG);
        int *data = malloc(count * sizeof(int));
        MPI_Recv(data, count, MPI_INT, 0, 4, MPI_COMM_WORLD, &status);
        CHECK(data[29] == 29 * 29, "data[29] = %d", data[29]);
    }
    return 0;
}

/* 2x2 matrices mod 1009, row-major: inoutvec = invec x inoutvec for each of *len matrices. */
static void matrix_product(void *invec, void *inoutvec, int *len, MPI_Datatype *datatype) {
    (void)datatype;
    int *a = invec, *b = inoutvec;
    for (int m = 0; m < *len; m++, a += 4, b += 4) {
        int c[4] = {
            (a[0] * b[0] + a[1] * b[2]) % 1009, (a[0] * b[1] + a[1] * b[3]) % 1009,
            (a[2] * b[0] + a[3] * b[2]) % 1009, (a[2] * b[1] + a[3] * b[3]) % 1009,
        };
        memcpy(b, c, sizeof c);
    }
}

static void matrix_of(int r, int m[4]) {
    m[0] = r + 2;
    m[1] = r;
    m[2] = 1;
    m[3] = 1;
}

/* The product of the matrices of ranks 0..n-1, in rank order. */
static void product_upto(int n, int out[4]) {
    int one[4] = {1, 0, 0, 1}, m[4];
    memcpy(out, one, sizeof one);
    for (int r = n - 1; r >= 0; r--) {
        int len = 1;
        matrix_of(r, m);
        matrix_product(m, out, &len, NULL);
    }
}

static int userop(void) {
    MPI_Datatype matrix;
    MPI_Type_contiguous(4, MPI_INT, &matrix);
    MPI_Type_commit(&matrix);
    MPI_Op op;
    MPI_Op_create(matrix_product, 0, &op);
    int mine[4], got[4] = {0}, expected[4];
    matrix_of(rank, mine);
    MPI_Allreduce(mine, got, 1, matrix, op, MPI_COMM_WORLD);
    product_upto(size, expected);
    CHECK(memcmp(got, expected, sizeof got) == 0, "allreduce %d %d %d %d", got[0], got[1], got[2],
          got[3]);
    memset(got, 0, sizeof got);
    MPI_Reduce(mine, got, 1, matrix, op, size - 1, MPI_COMM_WORLD);
    if (rank == size - 1) CHECK(memcmp(got, expected, sizeof got) == 0, "reduce %d", got[0]);
    MPI_Scan(mine, got, 1, matrix, op, MPI_COMM_WORLD);
    product_upto(rank + 1, expected);
    CHECK(memcmp(got, expected, sizeof got) == 0, "scan %d %d", got[0], got[1]);
    MPI_Op_free(&op);
    MPI_Type_free(&matrix);
    product_upto(size, expected);
    sprintf(out, "%d %d %d %d", expected[0], expected[1], expected[2], expected[3]);
    return 0;
}

int main(int argc, char **argv) {
    char input[256] = {0};
    faasmGetInput((uint8_t *)input, sizeof input - 1);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    int failed;
    if (strcmp(input, "ring") == 0) {
        failed = ring();
    } else if (strcmp(input, "allreduce") == 0) {
        failed = allreduce();
    } else if (strcmp(input, "bcast") == 0) {
        failed = bcast();
    } else if (strcmp(input, "scatter") == 0) {
        failed = scatter();
    } else if (strcmp(input, "alltoall") == 0) {
        failed = alltoall();
    } else if (strcmp(input, "scan") == 0) {
        failed = scan();
    } else if (strncmp(input, "barrier ", 8) == 0) {
        failed = barrier(input + 8);
    } else if (strcmp(input, "rma") == 0) {
        failed = rma();
    } else if (strcmp(input, "split") == 0) {
        failed = split();
    } else if (strcmp(input, "cart") == 0) {
        failed = cart();
    } else if (strcmp(input, "waitall") == 0) {
        failed = waitall();
    } else if (strcmp(input, "probe") == 0) {
        failed = probe();
    } else if (strcmp(input, "userop") == 0) {
        failed = userop();
    } else if (strcmp(input, "trap") == 0) {
        if (rank == size - 1) __builtin_trap();
        MPI_Barrier(MPI_COMM_WORLD);
        failed = 0;
    } else if (strcmp(input, "never") == 0) {
        int nothing;
        if (rank < 2) MPI_Recv(&nothing, 1, MPI_INT, 1 - rank, rank, MPI_COMM_WORLD, NULL);
        failed = 0;
    } else if (strcmp(input, "hang") == 0) {
        /* Every rank waits for a message no rank sends: the world ends only when it breaks. */
        int nothing;
        MPI_Recv(&nothing, 1, MPI_INT, MPI_ANY_SOURCE, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        failed = 0;
    } else if (strcmp(input, "abort") == 0) {
        if (rank == size - 1) MPI_Abort(MPI_COMM_WORLD, 7);
        MPI_Barrier(MPI_COMM_WORLD);
        failed = 0;
    } else {
        printf("unknown check %s\n", input);
        failed = 2;
    }
    MPI_Finalize();
    if (rank == 0 && !failed) {
        char line[4200];
        int len = snprintf(line, sizeof line, "%s ok size=%d %s", input, size, out);
        faasmSetOutput((uint8_t *)line, len);
    }
    return failed;
}
