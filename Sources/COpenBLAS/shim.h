// OpenBLAS's CBLAS interface (pkg-config `openblas` adds its include directory).
#include <cblas.h>
