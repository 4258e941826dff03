// libpng's simplified API (png_image_*): errors are reported by return code, never by longjmp.
#include <png.h>
