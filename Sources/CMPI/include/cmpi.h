// The few MPI calls swift-vlm's data-parallel training and feature extraction need, behind a
// shim that loads libmpi with dlopen() at run time. Nothing here needs mpi.h or libmpi to build:
// the same `vlm` binary runs single-process everywhere and data-parallel under `mpirun`.
// Supported ABI: Open MPI (libmpi.so.40, Debian's libopenmpi3 4.x). Every call returns 0 on
// success or an MPI error code (or -1 when MPI is not loaded); errors are fatal by MPI's default.
#ifndef VLM_CMPI_H
#define VLM_CMPI_H

#include <stddef.h>

/// Ranks the launcher asked for, read from the environment (Open MPI's OMPI_COMM_WORLD_SIZE,
/// PMIx's PMIX_SIZE...): 0 when not started by an MPI launcher.
int vlm_mpi_launcher_size(void);
/// Ranks on this node (OMPI_COMM_WORLD_LOCAL_SIZE), 0 when unknown.
int vlm_mpi_launcher_local_size(void);

/// Loads libmpi ($VLM_MPI_LIBRARY, else libmpi.so.40, else libmpi.so) and calls MPI_Init.
/// Returns 0, or -1 with a message in `error` (of `capacity` bytes).
int vlm_mpi_init(char *error, size_t capacity);
/// Whether vlm_mpi_init succeeded (and vlm_mpi_finalize has not run).
int vlm_mpi_active(void);
int vlm_mpi_rank(void);
int vlm_mpi_size(void);
/// The loaded library's MPI_Get_library_version text (empty when not loaded).
const char *vlm_mpi_library_version(void);

/// In-place element-wise sums over MPI_COMM_WORLD (split into calls of at most 2^30 elements).
int vlm_mpi_allreduce_sum_float(float *buffer, long count);
int vlm_mpi_allreduce_sum_double(double *buffer, long count);
/// In-place element-wise maximum.
int vlm_mpi_allreduce_max_double(double *buffer, long count);
int vlm_mpi_broadcast_float(float *buffer, long count, int root);
int vlm_mpi_barrier(void);
/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job. Does not return when MPI is loaded.
void vlm_mpi_abort(int code);
int vlm_mpi_finalize(void);

#endif
