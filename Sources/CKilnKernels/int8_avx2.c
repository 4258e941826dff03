// The int8 kernels for x86-64 with AVX2 (vpmaddubsw on |x| and sign-adjusted weights).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define SUFFIX avx2
#define I8_PATH 2
#include "int8_template.h"
#pragma clang attribute pop
#endif
