// The int8 kernels for x86-64 with AVX-512 VNNI (vpdpbusd, vpdpwssd).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), apply_to = function)
#define SUFFIX vnni
#define I8_PATH 3
#include "int8_template.h"
#pragma clang attribute pop
#endif
