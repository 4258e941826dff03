// Counts heap allocations, for tests that prove a code path allocates nothing.
//
// Linking this target into a test executable replaces malloc, calloc, realloc, free,
// posix_memalign, aligned_alloc and memalign for the whole process (symbols defined in the
// executable take precedence over libc's); each forwards to glibc's own implementation
// (__libc_malloc, ...). While counting is armed, every allocation on any thread is counted.
#ifndef CKILNMALLOCCOUNTER_H
#define CKILNMALLOCCOUNTER_H
#include <stdint.h>

/// 1 when this process's allocator is the counting one (glibc on Linux), else 0.
int kiln_malloc_counter_available(void);
/// Starts counting from zero.
void kiln_malloc_counter_arm(void);
/// Stops counting and returns the number of allocations since kiln_malloc_counter_arm.
uint64_t kiln_malloc_counter_disarm(void);

#endif
