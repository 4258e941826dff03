// The int8 kernels for aarch64 with the dot-product extension (sdot).
#if defined(__aarch64__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#define SUFFIX neondot
#define I8_PATH 4
#include "int8_template.h"
#pragma clang attribute pop
#endif
