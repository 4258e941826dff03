// The image kernels for x86-64 with AVX2 and FMA (8-float vectors).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define SUFFIX avx2
#define VLEN 8
#include "resample_template.h"
#pragma clang attribute pop
#endif
