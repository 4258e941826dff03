#include "CKilnMallocCounter.h"
#include <stdatomic.h>
#include <stddef.h>

static _Atomic int armed;
static _Atomic uint64_t count;

#if defined(__linux__) && defined(__GLIBC__)
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static inline void note(void) {
    if (atomic_load_explicit(&armed, memory_order_relaxed)) atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
}

void *malloc(size_t n) {
    note();
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    note();
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    note();
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t n) {
    note();
    return __libc_memalign(alignment, n);
}
void *aligned_alloc(size_t alignment, size_t n) {
    note();
    return __libc_memalign(alignment, n);
}
int posix_memalign(void **out, size_t alignment, size_t n) {
    note();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
int kiln_malloc_counter_available(void) { return 1; }
#else
int kiln_malloc_counter_available(void) { return 0; }
#endif

void kiln_malloc_counter_arm(void) {
    atomic_store(&count, 0);
    atomic_store(&armed, 1);
}

uint64_t kiln_malloc_counter_disarm(void) {
    atomic_store(&armed, 0);
    return atomic_load(&count);
}
