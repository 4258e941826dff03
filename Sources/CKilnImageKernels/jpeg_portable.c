// The JPEG decoder's per-ISA part for any CPU (the compiler's baseline vectors).
#define SUFFIX portable
#include "jpeg_template.h"
