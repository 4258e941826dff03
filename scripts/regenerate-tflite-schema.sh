#!/usr/bin/env bash
# Regenerates the private C++ code of KilnTFLiteSchema from Kiln's TFLite schema subset.
# Needs Debian's flatbuffers-compiler; the generated header asserts the exact flatbuffers
# version (2.0.8 on bookworm), so regenerate whenever libflatbuffers-dev changes.
set -euo pipefail
cd "$(dirname "$0")/../Sources/CKilnTFLiteSchema"
flatc --cpp --scoped-enums --no-prefix -o . schema/kiln_tflite.fbs
echo "wrote Sources/CKilnTFLiteSchema/kiln_tflite_generated.h with $(flatc --version)"
