/* trimmed_mean: the mean after cutting 10% of the values from each end, as scipy's
 * stats.trim_mean(x, 0.1): sort, drop floor(0.1 * n) values at each end, average the rest.
 * Nulls (NaN) are skipped. An mlc plugin (ABI version 1, docs/plugins.md) in freestanding
 * C: no libc, no imports; memory comes straight from memory.grow.
 *
 * Build: ./build.sh (clang --target=wasm32 -nostdlib, linked with wasm-ld). */

#include <stdint.h>
#include <stddef.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define MAX_STATES 1024
#define PAGE 65536u

extern unsigned char __heap_base;

/* ---- memory: a bump allocator with size-classed free lists ---------------------------
 * Blocks are powers of two from 16 bytes, so freed buffers (grown value arrays) are reused
 * by the next state instead of leaking for the life of the instance. */

static uintptr_t heap_top = 0;
static void *free_lists[32];

static unsigned size_class(size_t size) {
    unsigned c = 4; /* 16 bytes */
    while (((size_t)1 << c) < size) c++;
    return c;
}

static void *block_alloc(size_t size) {
    if (size == 0 || size > ((size_t)1 << 31)) return 0;
    unsigned c = size_class(size);
    if (free_lists[c]) {
        void *p = free_lists[c];
        free_lists[c] = *(void **)p;
        return p;
    }
    if (heap_top == 0) heap_top = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
    uintptr_t p = heap_top, end = p + ((size_t)1 << c);
    uintptr_t have = __builtin_wasm_memory_size(0) * PAGE;
    if (end > have) {
        size_t pages = (end - have + PAGE - 1) / PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
    }
    heap_top = end;
    return (void *)p;
}

static void block_free(void *p, size_t size) {
    if (!p || size == 0) return;
    unsigned c = size_class(size);
    *(void **)p = free_lists[c];
    free_lists[c] = p;
}

/* ---- errors ----------------------------------------------------------------------------- */

static const char *error_msg = "";
static uint32_t error_len = 0;

static int fail(const char *msg, int status) {
    uint32_t n = 0;
    while (msg[n]) n++;
    error_msg = msg;
    error_len = n;
    return status;
}

/* ---- states: every non-null value, kept for the exact sort at the end ---------------- */

typedef struct {
    int used;
    double *values;
    size_t len, cap;
} State;

static State states[MAX_STATES];

static State *state(int32_t h) {
    if (h < 0 || h >= MAX_STATES || !states[h].used) return 0;
    return &states[h];
}

static int push(State *s, double v) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *grown = block_alloc(cap * sizeof(double));
        if (!grown) return 0;
        for (size_t i = 0; i < s->len; i++) grown[i] = s->values[i];
        block_free(s->values, s->cap * sizeof(double));
        s->values = grown;
        s->cap = cap;
    }
    s->values[s->len++] = v;
    return 1;
}

/* Heapsort: O(n log n) worst case and in place, so no scratch memory is needed. */
static void sift(double *a, size_t start, size_t end) {
    size_t root = start;
    while (2 * root + 1 < end) {
        size_t child = 2 * root + 1;
        if (child + 1 < end && a[child] < a[child + 1]) child++;
        if (a[root] >= a[child]) return;
        double t = a[root]; a[root] = a[child]; a[child] = t;
        root = child;
    }
}

static void heapsort(double *a, size_t n) {
    if (n < 2) return;
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        double t = a[0]; a[0] = a[end]; a[end] = t;
        sift(a, 0, end);
    }
}

/* ---- the ABI ---------------------------------------------------------------------------- */

static const char META[] =
    "{\"name\":\"trimmed_mean\",\"args\":[{\"name\":\"x\",\"type\":\"float\"}],"
    "\"description\":\"Mean of x without the lowest and highest 10% of values, as "
    "scipy.stats.trim_mean(x, 0.1)\",\"version\":\"1.0.0\"}";

EXPORT(mlc_abi_version) int32_t mlc_abi_version(void) { return 1; }

EXPORT(mlc_meta) int64_t mlc_meta(void) {
    return (int64_t)(((uint64_t)(uintptr_t)META << 32) | (sizeof(META) - 1));
}

EXPORT(mlc_last_error) int64_t mlc_last_error(void) {
    return (int64_t)(((uint64_t)(uintptr_t)error_msg << 32) | error_len);
}

EXPORT(mlc_alloc) int32_t mlc_alloc(int32_t size) {
    if (size <= 0) return 0;
    return (int32_t)(uintptr_t)block_alloc((size_t)size);
}

EXPORT(mlc_free) void mlc_free(int32_t ptr, int32_t size) {
    block_free((void *)(uintptr_t)ptr, (size_t)size);
}

EXPORT(mlc_agg_init) int32_t mlc_agg_init(void) {
    for (int32_t h = 0; h < MAX_STATES; h++) {
        if (!states[h].used) {
            states[h] = (State){1, 0, 0, 0};
            return h;
        }
    }
    return fail("all 1024 aggregate states are in use", -1);
}

EXPORT(mlc_agg_update)
int32_t mlc_agg_update(int32_t h, int32_t cols, int32_t n_cols, int32_t n_rows) {
    State *s = state(h);
    if (!s) return fail("invalid aggregate handle", 2);
    if (n_cols != 1) return fail("trimmed_mean takes exactly one argument", 2);
    const double *x = (const double *)(uintptr_t)((const uint32_t *)(uintptr_t)cols)[0];
    for (int32_t i = 0; i < n_rows; i++) {
        if (x[i] != x[i]) continue; /* NaN is null */
        if (!push(s, x[i])) return fail("out of memory while storing values", 2);
    }
    return 0;
}

EXPORT(mlc_agg_merge) int32_t mlc_agg_merge(int32_t dst, int32_t src) {
    State *d = state(dst), *s = state(src);
    if (!d || !s || d == s) return fail("invalid aggregate handle", 2);
    for (size_t i = 0; i < s->len; i++)
        if (!push(d, s->values[i])) return fail("out of memory while merging", 2);
    return 0;
}

EXPORT(mlc_agg_finalize) int32_t mlc_agg_finalize(int32_t h, int32_t out) {
    State *s = state(h);
    if (!s) return fail("invalid aggregate handle", 2);
    if (s->len == 0) return fail("no non-null values", 1);
    /* Sorting in place is fine: the order of stored values carries no meaning. */
    heapsort(s->values, s->len);
    size_t cut = (size_t)(0.1 * (double)s->len);
    double sum = 0;
    for (size_t i = cut; i < s->len - cut; i++) sum += s->values[i];
    *(double *)(uintptr_t)out = sum / (double)(s->len - 2 * cut);
    return 0;
}

EXPORT(mlc_agg_free) void mlc_agg_free(int32_t h) {
    State *s = state(h);
    if (!s) return;
    block_free(s->values, s->cap * sizeof(double));
    *s = (State){0, 0, 0, 0};
}
