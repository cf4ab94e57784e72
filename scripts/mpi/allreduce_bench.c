// The cost of the training step's all-reduce alone: MPI_Allreduce(MPI_IN_PLACE, float sum) of
// `count` floats (default 1,217,665: the default projector's parameters + 1 loss sum), repeated;
// prints the median time per call. Built and run by scripts/mpi/throughput.sh with mpicc.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long count = argc > 1 ? atol(argv[1]) : 1217665;
    int repeats = argc > 2 ? atoi(argv[2]) : 50;
    float *buffer = malloc(count * sizeof(float));
    double *times = malloc(repeats * sizeof(double));
    for (long i = 0; i < count; i++) buffer[i] = (float)(i % 7) * 1e-3f;
    for (int r = 0; r < repeats; r++) {
        MPI_Barrier(MPI_COMM_WORLD);          // time the transfer, not a late rank
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        times[r] = MPI_Wtime() - t0;
    }
    qsort(times, repeats, sizeof(double), cmp);
    if (rank == 0)
        printf("MPI_Allreduce of %ld floats (%.2f MB) on %d ranks: median %.3f ms, min %.3f ms over %d calls\n",
               count, count * 4e-6, size, 1e3 * times[repeats / 2], 1e3 * times[0], repeats);
    free(buffer); free(times);
    MPI_Finalize();
    return 0;
}
