/* Umbrella header of CKilnONNXProto: the protobuf-c code generated from onnx.proto (Kiln's
   ONNX schema subset). Only KilnONNX's codec (ONNXCodec.swift) touches these C structs. */
#ifndef CKILN_ONNX_PROTO_H
#define CKILN_ONNX_PROTO_H
#include <protobuf-c/protobuf-c.h>
#include "onnx.pb-c.h"
#endif
