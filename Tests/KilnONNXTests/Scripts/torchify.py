"""Rewrites a Kiln-exported ONNX file into the shapes torch.onnx.export gives the same model.

Usage: torchify.py IN.onnx OUT.onnx [--mean-pool] [--matmul] [--external]
- names: nodes `/<module>/<Op>`, values `/<module>/<Op>_output_0` (graph inputs/outputs kept);
- every Reshape target becomes a Shape -> Gather -> Unsqueeze -> Concat chain (dynamic batch);
- Split in halves (torch.chunk) becomes two Slice nodes with Constant starts/ends/axes;
- GlobalAveragePool + Flatten becomes ReduceMean(axes=[2,3], keepdims=0) with --mean-pool
  (torch `x.mean([2, 3])`), else the Flatten becomes a Reshape to [N, -1] (`x.view(n, -1)`);
- Gemm becomes MatMul + Add with a pre-transposed weight with --matmul;
- Clip bounds become Constant nodes; Identity nodes pass some weights on; a Dropout is inserted;
- half of the initializers are stored in typed fields (float_data) instead of raw_data;
- with --external, large initializers go to `<OUT>.data` next to the model;
- Kiln's metadata is dropped (torch writes none).
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def main():
    src, dst = sys.argv[1], sys.argv[2]
    flags = set(sys.argv[3:])
    model = onnx.load(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    counter = [0]

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const_node(name, array):
        return helper.make_node("Constant", [], [name], name=fresh("/Constant"), value=numpy_helper.from_array(np.array(array), name))

    nodes = []
    producers = {}
    for n in g.node:
        for o in n.output:
            producers[o] = n
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    skip = set()
    graph_outputs = {o.name for o in g.output}

    for n in g.node:
        if id(n) in skip:
            continue
        if n.op_type == "Reshape" and n.input[1] in inits:
            target = numpy_helper.to_array(inits[n.input[1]]).tolist()
            shape, batch, unsq, rest, cat = (fresh("/Shape"), fresh("/Gather"), fresh("/Unsqueeze"), fresh("/rest"), fresh("/Concat"))
            idx, axes = fresh("/idx"), fresh("/axes")
            nodes += [
                helper.make_node("Shape", [n.input[0]], [shape], name=shape),
                const_node(idx, np.array(0, dtype=np.int64)),
                helper.make_node("Gather", [shape, idx], [batch], name=batch, axis=0),
                const_node(axes, np.array([0], dtype=np.int64)),
                helper.make_node("Unsqueeze", [batch, axes], [unsq], name=unsq),
                const_node(rest, np.array(target[1:], dtype=np.int64)),
                helper.make_node("Concat", [unsq, rest], [cat], name=cat, axis=0),
                helper.make_node("Reshape", [n.input[0], cat], list(n.output), name=n.name),
            ]
            continue
        if n.op_type == "Split" and len(n.output) == 2:
            sizes = numpy_helper.to_array(inits[n.input[1]]).tolist()
            axis = helper.get_attribute_value(n.attribute[0])
            bounds = [(0, sizes[0]), (sizes[0], sizes[0] + sizes[1])]
            for k, (s, e) in enumerate(bounds):
                st, en, ax = fresh("/starts"), fresh("/ends"), fresh("/axes")
                nodes += [
                    const_node(st, np.array([s], dtype=np.int64)), const_node(en, np.array([e], dtype=np.int64)),
                    const_node(ax, np.array([axis], dtype=np.int64)),
                    helper.make_node("Slice", [n.input[0], st, en, ax], [n.output[k]], name=f"{n.name}/Slice_{k}"),
                ]
            continue
        if n.op_type == "GlobalAveragePool" and "--mean-pool" in flags:
            users = consumers.get(n.output[0], [])
            if len(users) == 1 and users[0].op_type == "Flatten":
                flat = users[0]
                skip.add(id(flat))
                nodes.append(helper.make_node("ReduceMean", [n.input[0]], list(flat.output), name=n.name + "/ReduceMean", axes=[2, 3], keepdims=0))
                continue
        if n.op_type == "Flatten" and "--mean-pool" not in flags:
            shape, batch, unsq, rest, cat = (fresh("/Shape"), fresh("/Gather"), fresh("/Unsqueeze"), fresh("/rest"), fresh("/Concat"))
            idx, axes = fresh("/idx"), fresh("/axes")
            nodes += [
                helper.make_node("Shape", [n.input[0]], [shape], name=shape),
                const_node(idx, np.array(0, dtype=np.int64)),
                helper.make_node("Gather", [shape, idx], [batch], name=batch, axis=0),
                const_node(axes, np.array([0], dtype=np.int64)),
                helper.make_node("Unsqueeze", [batch, axes], [unsq], name=unsq),
                const_node(rest, np.array([-1], dtype=np.int64)),
                helper.make_node("Concat", [unsq, rest], [cat], name=cat, axis=0),
                helper.make_node("Reshape", [n.input[0], cat], list(n.output), name=n.name),
            ]
            continue
        if n.op_type == "Gemm":
            x = n.input[0]
            dropped = fresh("/dropout_out")
            ratio = fresh("/ratio")
            nodes += [const_node(ratio, np.array(0.2, dtype=np.float32)), helper.make_node("Dropout", [x, ratio], [dropped], name=fresh("/Dropout"))]
            if "--matmul" in flags:
                w = numpy_helper.to_array(inits[n.input[1]])
                wt = fresh("onnx::MatMul")
                g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T), wt))
                mm = fresh("/MatMul_output")
                nodes += [helper.make_node("MatMul", [dropped, wt], [mm], name=fresh("/MatMul")),
                          helper.make_node("Add", [n.input[2], mm], list(n.output), name=n.name + "/Add")]
            else:
                wid = fresh("/weight_identity")
                nodes += [helper.make_node("Identity", [n.input[1]], [wid], name=fresh("/Identity")),
                          helper.make_node("Gemm", [dropped, wid, n.input[2]], list(n.output), name=n.name, transB=1)]
            continue
        if n.op_type == "Clip":
            lo, hi = fresh("/min"), fresh("/max")
            nodes += [const_node(lo, numpy_helper.to_array(inits[n.input[1]])), const_node(hi, numpy_helper.to_array(inits[n.input[2]])),
                      helper.make_node("Clip", [n.input[0], lo, hi], list(n.output), name=n.name)]
            continue
        nodes.append(n)

    # torch-style names for nodes and intermediate values.
    rename = {}
    for k, n in enumerate(nodes):
        base = "/" + n.name.replace(".", "/").strip("/") + "/" + n.op_type
        n.name = base
        for j, o in enumerate(n.output):
            if o not in graph_outputs and o not in rename:
                rename[o] = f"{base}_output_{j}_{k}"
    for n in nodes:
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    for k, t in enumerate(keep):
        if k % 2 == 0 and t.data_type == TensorProto.FLOAT:
            values = numpy_helper.to_array(t).flatten().tolist()
            t.ClearField("raw_data")
            t.float_data[:] = values
    del g.initializer[:]
    g.initializer.extend(keep)
    del model.metadata_props[:]
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "batch_size"
    model.producer_name = "pytorch"
    if "--external" in flags:
        onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(dst) + ".data", size_threshold=1024)
    else:
        onnx.save_model(model, dst)


if __name__ == "__main__":
    main()
