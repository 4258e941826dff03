// The kernels for x86-64 with AVX2 and FMA (8-float vectors, 16 registers).
#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define SUFFIX avx2
#define VLEN 8
#define TILE_MR 6
#define TILE_NP 1
#define KV_SPLAT(x) ((kv)_mm256_set1_ps(x))
#include "kernels_template.h"
#pragma clang attribute pop
#endif
