"""Writes the ONNX backend node tests of the installed `onnx` package for the operators
Kiln's importer maps to Kiln ops, in the layout of onnx/backend/test/data/node:
OUT/<test name>/model.onnx and OUT/<test name>/test_data_set_<k>/{input,output}_<j>.pb.

Recent onnx wheels ship the test-case definitions (onnx.backend.test.case.node) but not the
generated data directory; this script generates exactly those files from the definitions.
Usage: node_tests.py OUT   (prints the names of the tests written, one per line)
"""
import os
import sys
import warnings

from onnx import numpy_helper
from onnx.backend.test.case import node

# ONNX operators Kiln imports: those with a Kiln op, and those folded or removed on import.
OPERATORS = {
    "Conv", "BatchNormalization", "Relu", "Clip", "Sigmoid", "Mul", "Add", "HardSwish", "MaxPool",
    "AveragePool", "GlobalAveragePool", "ReduceMean", "Concat", "Split", "Slice", "Reshape", "Transpose",
    "Flatten", "Gemm", "MatMul", "Softmax", "Constant", "Identity", "Dropout", "Shape", "Gather", "Unsqueeze",
    "Pad", "QuantizeLinear", "DequantizeLinear",
}


def write_tensor(path, value, name):
    with open(path, "wb") as f:
        proto = value if hasattr(value, "SerializeToString") and not hasattr(value, "shape") else numpy_helper.from_array(value, name)
        f.write(proto.SerializeToString())


def main():
    out = sys.argv[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases()
    for case in cases:
        ops = {n.op_type for n in case.model.graph.node}
        if not ops or not ops <= OPERATORS:
            continue
        inputs = case.model.graph.input
        if any(not i.type.HasField("tensor_type") for i in list(inputs) + list(case.model.graph.output)):
            continue
        directory = os.path.join(out, case.name)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for k, (ins, outs) in enumerate(case.data_sets):
            data = os.path.join(directory, f"test_data_set_{k}")
            os.makedirs(data, exist_ok=True)
            for j, value in enumerate(ins):
                write_tensor(os.path.join(data, f"input_{j}.pb"), value, case.model.graph.input[j].name)
            for j, value in enumerate(outs):
                write_tensor(os.path.join(data, f"output_{j}.pb"), value, case.model.graph.output[j].name)
        print(case.name)


if __name__ == "__main__":
    main()
