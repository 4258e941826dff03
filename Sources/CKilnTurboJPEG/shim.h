// TurboJPEG 2.x API (libturbojpeg0-dev; bookworm ships 2.1.5). Kiln uses the tj* 2.x entry points, not tj3*.
#include <stddef.h>
#include <turbojpeg.h>
