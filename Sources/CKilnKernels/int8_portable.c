// The int8 kernels in portable C (the compiler's baseline vectors).
#define SUFFIX portable
#define I8_PATH 1
#include "int8_template.h"
