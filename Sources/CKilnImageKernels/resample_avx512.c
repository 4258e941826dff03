// The image kernels for x86-64 with AVX-512 (16-float vectors).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#define SUFFIX avx512
#define VLEN 16
#include "resample_template.h"
#pragma clang attribute pop
#endif
