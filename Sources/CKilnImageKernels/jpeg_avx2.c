// The JPEG decoder's per-ISA part for x86-64 with AVX2, FMA and BMI2.
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2"))), apply_to = function)
#define SUFFIX avx2
#include "jpeg_template.h"
#pragma clang attribute pop
#endif
