// The kernels for x86-64 with AVX-512 F/VL/BW/DQ (16-float vectors, 32 registers).
#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))), apply_to = function)
#define SUFFIX avx512
#define VLEN 16
#define TILE_MR 8
#define TILE_NP 2
#define KV_SPLAT(x) ((kv)_mm512_set1_ps(x))
#include "kernels_template.h"
#pragma clang attribute pop
#endif
