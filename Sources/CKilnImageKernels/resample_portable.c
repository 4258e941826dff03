// The image kernels for any CPU: the compiler's baseline vectors (SSE2 on x86-64, NEON on aarch64).
#define SUFFIX portable
#define VLEN 4
#include "resample_template.h"
