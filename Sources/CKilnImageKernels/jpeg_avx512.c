// The JPEG decoder's per-ISA part for x86-64 with AVX-512 (BW, VL, DQ, VBMI where present).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2"))), apply_to = function)
#define SUFFIX avx512
#include "jpeg_template.h"
#pragma clang attribute pop
#endif
