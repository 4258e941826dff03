/// Python that writes a small float TFLite model with Google's own generated schema code
/// (`ai_edge_litert.schema_py_generated`, object API) and the `flatbuffers` package — a file
/// Kiln did not write. Usage: `python -c <script> OUT.tflite`.
///
/// input `[1,6,6,2]` → CONV_2D 3x3 SAME stride 1, 3 filters, fused RELU6 → DEPTHWISE_CONV_2D
/// 3x3 VALID stride 2 → MEAN over H,W (keep dims) → RESHAPE `[1,3]` → FULLY_CONNECTED 4 units →
/// SOFTMAX (`probs`) and LOGISTIC (`scores`). No SignatureDef; activations each reference an
/// empty buffer of their own (as older converters wrote them).
public let foreignTFLiteModelScript = """
    import sys
    import numpy as np
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(5)
    m = s.ModelT()
    m.version = 3
    m.description = 'written by schema_py_generated'
    m.buffers = [s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors, sg.operators = [], []

    def buf(array):
        b = s.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
        m.buffers.append(b)
        return len(m.buffers) - 1

    def tensor(name, shape, array=None, ttype=s.TensorType.FLOAT32):
        t = s.TensorT()
        t.name, t.shape, t.type = name, list(shape), ttype
        if array is None:
            m.buffers.append(s.BufferT())
            t.buffer = len(m.buffers) - 1
        else:
            t.buffer = buf(array)
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    codes = {}
    def op(code, ins, outs, opt_type=0, opt=None):
        if code not in codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            m.operatorCodes = (m.operatorCodes or []) + [c]
            codes[code] = len(m.operatorCodes) - 1
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes[code], ins, outs
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        sg.operators.append(o)

    f32 = np.float32
    x = tensor('image', [1, 6, 6, 2])
    w1 = tensor('conv/weights', [3, 3, 3, 2], rng.standard_normal((3, 3, 3, 2)).astype(f32))
    b1 = tensor('conv/bias', [3], rng.standard_normal(3).astype(f32))
    y1 = tensor('conv/out', [1, 6, 6, 3])
    o = s.Conv2DOptionsT(); o.padding, o.strideW, o.strideH = s.Padding.SAME, 1, 1
    o.fusedActivationFunction = s.ActivationFunctionType.RELU6
    op(s.BuiltinOperator.CONV_2D, [x, w1, b1], [y1], s.BuiltinOptions.Conv2DOptions, o)

    w2 = tensor('dw/weights', [1, 3, 3, 3], rng.standard_normal((1, 3, 3, 3)).astype(f32))
    b2 = tensor('dw/bias', [3], rng.standard_normal(3).astype(f32))
    y2 = tensor('dw/out', [1, 2, 2, 3])
    o = s.DepthwiseConv2DOptionsT(); o.padding, o.strideW, o.strideH, o.depthMultiplier = s.Padding.VALID, 2, 2, 1
    op(s.BuiltinOperator.DEPTHWISE_CONV_2D, [y1, w2, b2], [y2], s.BuiltinOptions.DepthwiseConv2DOptions, o)

    axes = tensor('mean/axes', [2], np.array([1, 2], dtype=np.int32), s.TensorType.INT32)
    y3 = tensor('mean/out', [1, 1, 1, 3])
    o = s.ReducerOptionsT(); o.keepDims = True
    op(s.BuiltinOperator.MEAN, [y2, axes], [y3], s.BuiltinOptions.ReducerOptions, o)

    shape = tensor('flat/shape', [2], np.array([1, 3], dtype=np.int32), s.TensorType.INT32)
    y4 = tensor('flat/out', [1, 3])
    op(s.BuiltinOperator.RESHAPE, [y3, shape], [y4])

    w5 = tensor('fc/weights', [4, 3], rng.standard_normal((4, 3)).astype(f32))
    b5 = tensor('fc/bias', [4], rng.standard_normal(4).astype(f32))
    y5 = tensor('fc/out', [1, 4])
    o = s.FullyConnectedOptionsT()
    op(s.BuiltinOperator.FULLY_CONNECTED, [y4, w5, b5], [y5], s.BuiltinOptions.FullyConnectedOptions, o)

    probs = tensor('probs', [1, 4])
    o = s.SoftmaxOptionsT(); o.beta = 1.0
    op(s.BuiltinOperator.SOFTMAX, [y5], [probs], s.BuiltinOptions.SoftmaxOptions, o)
    scores = tensor('scores', [1, 4])
    op(s.BuiltinOperator.LOGISTIC, [y5], [scores])

    sg.inputs, sg.outputs, sg.name = [x], [probs, scores], 'main'
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b'TFL3')
    open(sys.argv[1], 'wb').write(b.Output())
    """
