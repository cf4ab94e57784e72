// See include/cmpi.h. Open MPI's handles are pointers to exported objects (MPI_COMM_WORLD is
// &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM &ompi_mpi_op_sum) and MPI_IN_PLACE is
// (void *)1: that is its mpi.h, stable across Open MPI 1.x-5.x, so they are looked up by name.
#include "cmpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *Handle;
static void *library;
static int active;
static int worldRank, worldSize;
static char versionText[512];

static Handle commWorld, typeFloat, typeDouble, opSum, opMax;
static void *const inPlace = (void *)1;

static int (*p_Init)(int *, char ***);
static int (*p_Finalize)(void);
static int (*p_Comm_rank)(Handle, int *);
static int (*p_Comm_size)(Handle, int *);
static int (*p_Allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*p_Bcast)(void *, int, Handle, int, Handle);
static int (*p_Barrier)(Handle);
static int (*p_Abort)(Handle, int);
static int (*p_Get_library_version)(char *, int *);

static int envInt(const char *name) {
    const char *v = getenv(name);
    return v ? atoi(v) : 0;
}

int vlm_mpi_launcher_size(void) {
    int n = envInt("OMPI_COMM_WORLD_SIZE");
    if (n == 0) n = envInt("PMIX_SIZE");
    if (n == 0) n = envInt("PMI_SIZE");
    return n;
}

int vlm_mpi_launcher_local_size(void) { return envInt("OMPI_COMM_WORLD_LOCAL_SIZE"); }

#define LOAD(ptr, name)                                                                          \
    do {                                                                                         \
        *(void **)(&ptr) = dlsym(library, name);                                                 \
        if (!ptr) { snprintf(error, capacity, "%s has no symbol %s (not Open MPI?)", path, name); \
                    return -1; }                                                                 \
    } while (0)

int vlm_mpi_init(char *error, size_t capacity) {
    if (active) return 0;
    const char *candidates[3] = {getenv("VLM_MPI_LIBRARY"), "libmpi.so.40", "libmpi.so"};
    const char *path = NULL;
    char reasons[768] = "";
    for (int i = 0; i < 3 && !library; i++) {
        if (!candidates[i] || !candidates[i][0]) continue;
        // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so) resolve libmpi/libopen-pal symbols from it
        library = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
        if (library) { path = candidates[i]; break; }
        const char *why = dlerror();
        size_t used = strlen(reasons);
        snprintf(reasons + used, sizeof reasons - used, "%s%s", used ? "; " : "", why ? why : candidates[i]);
    }
    if (!library) {
        snprintf(error, capacity, "cannot load the MPI library (%s); install Open MPI (Debian: openmpi-bin libopenmpi3) or set VLM_MPI_LIBRARY", reasons);
        return -1;
    }
    LOAD(p_Init, "MPI_Init");
    LOAD(p_Finalize, "MPI_Finalize");
    LOAD(p_Comm_rank, "MPI_Comm_rank");
    LOAD(p_Comm_size, "MPI_Comm_size");
    LOAD(p_Allreduce, "MPI_Allreduce");
    LOAD(p_Bcast, "MPI_Bcast");
    LOAD(p_Barrier, "MPI_Barrier");
    LOAD(p_Abort, "MPI_Abort");
    LOAD(p_Get_library_version, "MPI_Get_library_version");
    LOAD(commWorld, "ompi_mpi_comm_world");
    LOAD(typeFloat, "ompi_mpi_float");
    LOAD(typeDouble, "ompi_mpi_double");
    LOAD(opSum, "ompi_mpi_op_sum");
    LOAD(opMax, "ompi_mpi_op_max");
    int rc = p_Init(NULL, NULL);
    if (rc != 0) { snprintf(error, capacity, "MPI_Init failed (error %d)", rc); return -1; }
    p_Comm_rank(commWorld, &worldRank);
    p_Comm_size(commWorld, &worldSize);
    int length = 0;
    if (p_Get_library_version(versionText, &length) != 0) versionText[0] = 0;
    versionText[sizeof versionText - 1] = 0;
    char *newline = strchr(versionText, '\n');
    if (newline) *newline = 0;
    active = 1;
    return 0;
}

int vlm_mpi_active(void) { return active; }
int vlm_mpi_rank(void) { return active ? worldRank : 0; }
int vlm_mpi_size(void) { return active ? worldSize : 1; }
const char *vlm_mpi_library_version(void) { return versionText; }

enum { CHUNK = 1 << 30 };

static int allreduce(void *buffer, long count, size_t width, Handle type, Handle op) {
    if (!active) return -1;
    for (long done = 0; done < count; done += CHUNK) {
        long n = count - done < CHUNK ? count - done : CHUNK;
        int rc = p_Allreduce(inPlace, (char *)buffer + done * width, (int)n, type, op, commWorld);
        if (rc != 0) return rc;
    }
    return 0;
}

int vlm_mpi_allreduce_sum_float(float *buffer, long count) { return allreduce(buffer, count, sizeof(float), typeFloat, opSum); }
int vlm_mpi_allreduce_sum_double(double *buffer, long count) { return allreduce(buffer, count, sizeof(double), typeDouble, opSum); }
int vlm_mpi_allreduce_max_double(double *buffer, long count) { return allreduce(buffer, count, sizeof(double), typeDouble, opMax); }

int vlm_mpi_broadcast_float(float *buffer, long count, int root) {
    if (!active) return -1;
    for (long done = 0; done < count; done += CHUNK) {
        long n = count - done < CHUNK ? count - done : CHUNK;
        int rc = p_Bcast(buffer + done, (int)n, typeFloat, root, commWorld);
        if (rc != 0) return rc;
    }
    return 0;
}

int vlm_mpi_barrier(void) { return active ? p_Barrier(commWorld) : -1; }

void vlm_mpi_abort(int code) {
    if (active) p_Abort(commWorld, code);
}

int vlm_mpi_finalize(void) {
    if (!active) return 0;
    active = 0;
    return p_Finalize();
}
