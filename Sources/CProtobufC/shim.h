/* libprotobuf-c (Debian libprotobuf-c-dev): the runtime of the protoc-c generated ONNX code. */
#include <protobuf-c/protobuf-c.h>
