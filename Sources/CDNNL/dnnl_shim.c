// See include/cdnnl.h. The oneDNN 2.x C API types come from its header when the build machine
// has one (libdnnl-dev); the functions are looked up with dlsym, so nothing links against
// libdnnl. Without the header (or with a 3.x header, whose API differs) the bf16 path is
// compiled out and `vlm_dnnl_status` says so.
#include "cdnnl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#endif
#endif

static char statusText[256] = "oneDNN not loaded yet";

// bf16 conversion, round to nearest even (the rounding oneDNN and PyTorch use).
// The one definition of the rounding: the top 16 bits of x's nearest bf16 value.
static inline uint16_t bf16Bits(float x) {   // branch-free, so that loops over it vectorise
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x40u;                           // NaN stays a (quiet) NaN
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? quiet : rounded);
}

void vlm_bf16_from_float(uint16_t *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) dst[i] = bf16Bits(src[i]);
}

void vlm_bf16_round(float *x, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)bf16Bits(x[i]) << 16;
        memcpy(&x[i], &u, 4);
    }
}

#if defined(DNNL_VERSION_MAJOR) && DNNL_VERSION_MAJOR == 2

static void *library;
static int loaded = -1;           // -1 not tried, 0 unavailable, 1 ready
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static dnnl_status_t (*p_engine_create)(dnnl_engine_t *, dnnl_engine_kind_t, size_t);
static dnnl_status_t (*p_stream_create)(dnnl_stream_t *, dnnl_engine_t, unsigned);
static dnnl_status_t (*p_stream_wait)(dnnl_stream_t);
static dnnl_status_t (*p_md_init_by_tag)(dnnl_memory_desc_t *, int, const dnnl_dims_t, dnnl_data_type_t, dnnl_format_tag_t);
static dnnl_status_t (*p_matmul_desc_init)(dnnl_matmul_desc_t *, const dnnl_memory_desc_t *, const dnnl_memory_desc_t *,
                                           const dnnl_memory_desc_t *, const dnnl_memory_desc_t *);
static dnnl_status_t (*p_pd_create)(dnnl_primitive_desc_t *, const_dnnl_op_desc_t, const_dnnl_primitive_attr_t,
                                    dnnl_engine_t, const_dnnl_primitive_desc_t);
static dnnl_status_t (*p_pd_query)(const_dnnl_primitive_desc_t, dnnl_query_t, int, void *);
static dnnl_status_t (*p_pd_destroy)(dnnl_primitive_desc_t);
static dnnl_status_t (*p_primitive_create)(dnnl_primitive_t *, const_dnnl_primitive_desc_t);
static dnnl_status_t (*p_primitive_execute)(const_dnnl_primitive_t, dnnl_stream_t, int, const dnnl_exec_arg_t *);
static dnnl_status_t (*p_memory_create)(dnnl_memory_t *, const dnnl_memory_desc_t *, dnnl_engine_t, void *);
static dnnl_status_t (*p_memory_destroy)(dnnl_memory_t);
static dnnl_status_t (*p_attr_create)(dnnl_primitive_attr_t *);
static dnnl_status_t (*p_attr_destroy)(dnnl_primitive_attr_t);
static dnnl_status_t (*p_attr_set_post_ops)(dnnl_primitive_attr_t, const_dnnl_post_ops_t);
static dnnl_status_t (*p_post_ops_create)(dnnl_post_ops_t *);
static dnnl_status_t (*p_post_ops_destroy)(dnnl_post_ops_t);
static dnnl_status_t (*p_post_ops_append_sum)(dnnl_post_ops_t, float);
static const dnnl_version_t *(*p_version)(void);
static void (*p_omp_set_num_threads)(int);

// Primitives by shape. Creating one costs ~0.2 ms; a training step asks for ~14 shapes per
// row count, so they are kept (round-robin replacement beyond the table's size).
typedef struct { long M, K, N; int transposed, accumulate; dnnl_primitive_t primitive; } Entry;
#define CACHE_SIZE 256
static Entry cache[CACHE_SIZE];
static int cacheCount, cacheNext;

#define LOOKUP(name) do { *(void **)(&p_##name) = dlsym(library, "dnnl_" #name); \
    if (!p_##name) { snprintf(statusText, sizeof statusText, "bf16 off: %s lacks dnnl_%s", path, #name); return 0; } } while (0)

static dnnl_primitive_t makePrimitive(long M, long K, long N, int transposed, int accumulate, const char **impl) {
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t sdims = {M, K}, wdims = {K, N}, ddims = {M, N};
    if (p_md_init_by_tag(&src, 2, sdims, dnnl_bf16, dnnl_ab) != dnnl_success) return NULL;
    // transposed: b is (N,K) row-major, i.e. B(K,N) with strides (1, K): tag "ba"
    if (p_md_init_by_tag(&wei, 2, wdims, dnnl_bf16, transposed ? dnnl_ba : dnnl_ab) != dnnl_success) return NULL;
    if (p_md_init_by_tag(&dst, 2, ddims, dnnl_f32, dnnl_ab) != dnnl_success) return NULL;
    dnnl_matmul_desc_t desc;
    if (p_matmul_desc_init(&desc, &src, &wei, NULL, &dst) != dnnl_success) return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    if (accumulate) {
        if (p_attr_create(&attr) != dnnl_success) return NULL;
        if (p_post_ops_create(&ops) != dnnl_success) { p_attr_destroy(attr); return NULL; }
        p_post_ops_append_sum(ops, 1.0f);
        p_attr_set_post_ops(attr, ops);
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = p_pd_create(&pd, &desc, attr, engine, NULL);
    if (ops) p_post_ops_destroy(ops);
    if (attr) p_attr_destroy(attr);
    if (st != dnnl_success) return NULL;
    if (impl) p_pd_query(pd, dnnl_query_impl_info_str, 0, (void *)impl);
    dnnl_primitive_t primitive = NULL;
    st = p_primitive_create(&primitive, pd);
    p_pd_destroy(pd);
    return st == dnnl_success ? primitive : NULL;
}

/// Debian's oneDNN runs on libgomp, whose threads spin ~300,000 times at every barrier before
/// they sleep. When the cores are busy with other work (a training run, a second vlm) the thread
/// a spinner waits for is descheduled and the spin burns the time slice: a caption measured
/// 23 s instead of 7 s beside a 2-rank training run. A short spin (GOMP_SPINCOUNT=10000, tens of
/// microseconds) keeps most of the benefit on an idle machine. libgomp reads it when it loads,
/// which is the dlopen below; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
static const char *spinNote = "";
static void limitOpenMPSpinning(void) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) { spinNote = " (OpenMP waiting as the environment says)"; return; }
    setenv("GOMP_SPINCOUNT", "10000", 0);
    spinNote = " (GOMP_SPINCOUNT=10000 set by vlm)";
}

static int loadLocked(void) {
    const char *names[] = {"libdnnl.so.2", "libdnnl.so"};
    const char *path = NULL;
    limitOpenMPSpinning();
    for (int i = 0; i < 2 && !library; i++) { library = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL); path = names[i]; }
    if (!library) {
        snprintf(statusText, sizeof statusText, "bf16 off: oneDNN not found (apt install libdnnl2.6: %s)", dlerror());
        return 0;
    }
    LOOKUP(engine_create); LOOKUP(stream_create); LOOKUP(stream_wait);
    *(void **)(&p_md_init_by_tag) = dlsym(library, "dnnl_memory_desc_init_by_tag");
    LOOKUP(matmul_desc_init);
    *(void **)(&p_pd_create) = dlsym(library, "dnnl_primitive_desc_create");
    *(void **)(&p_pd_query) = dlsym(library, "dnnl_primitive_desc_query");
    *(void **)(&p_pd_destroy) = dlsym(library, "dnnl_primitive_desc_destroy");
    *(void **)(&p_primitive_create) = dlsym(library, "dnnl_primitive_create");
    *(void **)(&p_primitive_execute) = dlsym(library, "dnnl_primitive_execute");
    *(void **)(&p_memory_create) = dlsym(library, "dnnl_memory_create");
    *(void **)(&p_memory_destroy) = dlsym(library, "dnnl_memory_destroy");
    *(void **)(&p_attr_create) = dlsym(library, "dnnl_primitive_attr_create");
    *(void **)(&p_attr_destroy) = dlsym(library, "dnnl_primitive_attr_destroy");
    *(void **)(&p_attr_set_post_ops) = dlsym(library, "dnnl_primitive_attr_set_post_ops");
    *(void **)(&p_post_ops_create) = dlsym(library, "dnnl_post_ops_create");
    *(void **)(&p_post_ops_destroy) = dlsym(library, "dnnl_post_ops_destroy");
    *(void **)(&p_post_ops_append_sum) = dlsym(library, "dnnl_post_ops_append_sum");
    *(void **)(&p_version) = dlsym(library, "dnnl_version");
    *(void **)(&p_omp_set_num_threads) = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!p_md_init_by_tag || !p_pd_create || !p_pd_query || !p_pd_destroy || !p_primitive_create || !p_primitive_execute ||
        !p_memory_create || !p_memory_destroy || !p_attr_create || !p_attr_destroy || !p_attr_set_post_ops ||
        !p_post_ops_create || !p_post_ops_destroy || !p_post_ops_append_sum || !p_version) {
        snprintf(statusText, sizeof statusText, "bf16 off: %s is not the oneDNN 2.x C API", path);
        return 0;
    }
    const dnnl_version_t *v = p_version();
    if (v->major != 2) {
        snprintf(statusText, sizeof statusText, "bf16 off: oneDNN %d.%d loaded, this build speaks the 2.x API", v->major, v->minor);
        return 0;
    }
    if (p_engine_create(&engine, dnnl_cpu, 0) != dnnl_success || p_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(statusText, sizeof statusText, "bf16 off: oneDNN %d.%d could not create a CPU engine", v->major, v->minor);
        return 0;
    }
    // The bf16 path is worth it only where oneDNN has a native bf16 kernel for these shapes.
    const char *impl = "";
    dnnl_primitive_t probe = makePrimitive(64, 576, 576, 1, 0, &impl);
    char implCopy[64];
    snprintf(implCopy, sizeof implCopy, "%s", impl ? impl : "?");
    if (!probe) {
        snprintf(statusText, sizeof statusText, "bf16 off: oneDNN %d.%d.%d has no bf16 matmul here (no native bf16 on this CPU?)", v->major, v->minor, v->patch);
        return 0;
    }
    if (!strstr(implCopy, "bf16") && !strstr(implCopy, "amx")) {
        snprintf(statusText, sizeof statusText, "bf16 off: oneDNN %d.%d.%d would run bf16 as %s (no native bf16 on this CPU)",
                 v->major, v->minor, v->patch, implCopy);
        return 0;
    }
    cache[0] = (Entry){64, 576, 576, 1, 0, probe};
    cacheCount = 1; cacheNext = 1;
    snprintf(statusText, sizeof statusText, "bf16 on: oneDNN %d.%d.%d matmul %s%s", v->major, v->minor, v->patch, implCopy, spinNote);
    return 1;
}

int vlm_dnnl_load(void) {
    pthread_mutex_lock(&lock);
    if (loaded < 0) loaded = loadLocked();
    pthread_mutex_unlock(&lock);
    return loaded;
}

const char *vlm_dnnl_status(void) { return statusText; }

void vlm_dnnl_set_threads(int n) {
    if (vlm_dnnl_load() && p_omp_set_num_threads && n > 0) p_omp_set_num_threads(n);
}

static dnnl_primitive_t primitiveFor(long M, long K, long N, int transposed, int accumulate) {
    for (int i = 0; i < cacheCount; i++) {
        Entry *e = &cache[i];
        if (e->M == M && e->K == K && e->N == N && e->transposed == transposed && e->accumulate == accumulate) return e->primitive;
    }
    dnnl_primitive_t p = makePrimitive(M, K, N, transposed, accumulate, NULL);
    if (!p) return NULL;
    // the replaced primitive is leaked (a few KiB; only past 256 distinct shapes)
    int slot = cacheCount < CACHE_SIZE ? cacheCount++ : (cacheNext++ % CACHE_SIZE);
    cache[slot] = (Entry){M, K, N, transposed, accumulate, p};
    return p;
}

int vlm_dnnl_matmul(float *y, const float *x, const uint16_t *b, uint16_t *scratch,
                    long M, long K, long N, int transposed, int accumulate) {
    if (M <= 0 || N <= 0) return 0;
    if (vlm_dnnl_load() != 1) return -1;
    // One product at a time: the primitives are shared and so is the stream, which is not for
    // concurrent use; each product is itself parallel (OpenMP) inside oneDNN.
    pthread_mutex_lock(&lock);
    dnnl_primitive_t p = primitiveFor(M, K, N, transposed, accumulate);
    if (!p) { pthread_mutex_unlock(&lock); return -2; }
    vlm_bf16_from_float(scratch, x, M * K);
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t sdims = {M, K}, wdims = {K, N}, ddims = {M, N};
    p_md_init_by_tag(&src, 2, sdims, dnnl_bf16, dnnl_ab);
    p_md_init_by_tag(&wei, 2, wdims, dnnl_bf16, transposed ? dnnl_ba : dnnl_ab);
    p_md_init_by_tag(&dst, 2, ddims, dnnl_f32, dnnl_ab);
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
    int rc = 0;
    if (p_memory_create(&ms, &src, engine, scratch) != dnnl_success ||
        p_memory_create(&mw, &wei, engine, (void *)b) != dnnl_success ||
        p_memory_create(&md, &dst, engine, y) != dnnl_success) {
        rc = -3;
    } else {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
        dnnl_status_t st = p_primitive_execute(p, stream, 3, args);
        if (st == dnnl_success) st = p_stream_wait(stream);
        rc = st == dnnl_success ? 0 : (int)st;
    }
    if (ms) p_memory_destroy(ms);
    if (mw) p_memory_destroy(mw);
    if (md) p_memory_destroy(md);
    pthread_mutex_unlock(&lock);
    return rc;
}

#else  // no oneDNN 2.x header at build time

int vlm_dnnl_load(void) {
    snprintf(statusText, sizeof statusText, "bf16 off: built without the oneDNN 2.x header (apt install libdnnl-dev, then rebuild)");
    return 0;
}
const char *vlm_dnnl_status(void) { vlm_dnnl_load(); return statusText; }
void vlm_dnnl_set_threads(int n) { (void)n; }
int vlm_dnnl_matmul(float *y, const float *x, const uint16_t *b, uint16_t *scratch,
                    long M, long K, long N, int transposed, int accumulate) {
    (void)y; (void)x; (void)b; (void)scratch; (void)M; (void)K; (void)N; (void)transposed; (void)accumulate;
    return -1;
}

#endif
