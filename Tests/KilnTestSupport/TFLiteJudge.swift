import Foundation
import KilnTensor
import XCTest

/// Runs `.tflite` files in the TFLite interpreter (`ai_edge_litert`) from the test venv.
public enum TFLiteJudge {
    /// The op resolver the interpreter runs with: TFLite's default (which applies the XNNPACK
    /// delegate) or its builtin kernels only (`BUILTIN_WITHOUT_DEFAULT_DELEGATES`).
    public enum Resolver: String, Sendable {
        case xnnpack = "default"
        case builtin
    }

    /// Python that loads a model, feeds inputs from raw files (in each input's own dtype), runs
    /// it and writes every output's raw bytes plus a JSON line `{name: [index, shape, dtype]}`.
    /// With a SignatureDef the inputs and outputs are matched by signature name; without one by
    /// tensor name.
    static let runner = """
        import sys, json, os
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        model, outdir, resolver = sys.argv[1], sys.argv[2], sys.argv[3]
        feeds = dict(a.split('=', 1) for a in sys.argv[4:])
        kind = OpResolverType.AUTO if resolver == 'default' else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        it = Interpreter(model_path=model, experimental_op_resolver_type=kind, num_threads=1)
        sigs = it.get_signature_list()
        result = {}
        if sigs:
            key = list(sigs.keys())[0]
            run = it.get_signature_runner(key)
            details = run.get_input_details()
            args = {n: np.fromfile(feeds[n], dtype=d['dtype']).reshape(d['shape']) for n, d in details.items()}
            result = run(**args)
            # The subgraph's output order (the signature list comes back sorted by name).
            order = [d['name'] for d in it.get_output_details()]
        else:
            it.allocate_tensors()
            for d in it.get_input_details():
                it.set_tensor(d['index'], np.fromfile(feeds[d['name']], dtype=d['dtype']).reshape(d['shape']))
            it.invoke()
            order = []
            for d in it.get_output_details():
                result[d['name']] = it.get_tensor(d['index'])
                order.append(d['name'])
        shapes = {}
        for i, n in enumerate(order):
            a = np.ascontiguousarray(result[n])
            a.tofile(os.path.join(outdir, '%d.bin' % i))
            shapes[n] = [i, list(a.shape), str(a.dtype)]
        print(json.dumps({'outputs': shapes, 'order': order}))
        """

    /// Runs `model` on `inputs` (by name; float32 or int8 as the model's inputs are) and returns
    /// every output by name (signature names when the model has a signature), plus the names of
    /// the subgraph's output tensors in the interpreter's order.
    public static func run(
        _ python: String, model: String, inputs: [String: Tensor], resolver: Resolver = .xnnpack
    ) throws -> (outputs: [String: Tensor], order: [String]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tflite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [model, dir.path, resolver.rawValue]
        for (name, t) in inputs.sorted(by: { $0.key < $1.key }) {
            let path = dir.appendingPathComponent("in-\(args.count).bin")
            try t.withUnsafeBytes { Data($0) }.write(to: path)
            args.append("\(name)=\(path.path)")
        }
        let r = try PythonJudge.runScript(python, runner, args)
        guard r.status == 0 else { throw TestFailure("the TFLite interpreter failed on \(model):\n\(r.stderr)") }
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let shapes = object["outputs"] as? [String: [Any]], let order = object["order"] as? [String]
        else { throw TestFailure("unexpected interpreter output: \(r.stdout)") }
        var outputs = [String: Tensor]()
        for (name, entry) in shapes {
            let index = entry[0] as! Int
            let shape = Shape((entry[1] as! [Int]))
            let dtype: DType
            switch entry[2] as! String {
            case "float32": dtype = .f32
            case "int8": dtype = .i8
            case "uint8": dtype = .u8
            case "int32": dtype = .i32
            case let other: throw TestFailure("output '\(name)' has dtype \(other)")
            }
            let data = try Data(contentsOf: dir.appendingPathComponent("\(index).bin"))
            let t = try data.withUnsafeBytes { try Tensor(dtype: dtype, shape: shape, bytes: $0) }
            outputs[name] = t
        }
        return (outputs, order)
    }
}

extension TFLiteJudge {
    static let everyTensorRunner = """
        import sys, json, os
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        model, outdir, resolver = sys.argv[1], sys.argv[2], sys.argv[3]
        feeds = dict(a.split('=', 1) for a in sys.argv[4:])
        kind = OpResolverType.AUTO if resolver == 'default' else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        it = Interpreter(model_path=model, experimental_op_resolver_type=kind, experimental_preserve_all_tensors=True, num_threads=1)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d['index'], np.fromfile(feeds[d['name']], dtype=d['dtype']).reshape(d['shape']))
        it.invoke()
        shapes = {}
        for d in it.get_tensor_details():
            try:
                a = np.ascontiguousarray(it.get_tensor(d['index']))
            except ValueError:
                continue
            if a.dtype not in (np.int8, np.float32): continue
            a.tofile(os.path.join(outdir, '%d.bin' % d['index']))
            shapes[d['name']] = [d['index'], list(a.shape), str(a.dtype)]
        print(json.dumps(shapes))
        """

    /// Runs `model` (feeding tensors by name) and returns every int8 and float32 tensor the
    /// interpreter holds afterwards, by tensor name (`experimental_preserve_all_tensors`).
    public static func runKeepingEveryTensor(
        _ python: String, model: String, inputs: [String: Tensor], resolver: Resolver = .builtin
    ) throws -> [String: Tensor] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tflite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [model, dir.path, resolver.rawValue]
        for (name, t) in inputs.sorted(by: { $0.key < $1.key }) {
            let path = dir.appendingPathComponent("in-\(args.count).bin")
            try t.withUnsafeBytes { Data($0) }.write(to: path)
            args.append("\(name)=\(path.path)")
        }
        let r = try PythonJudge.runScript(python, everyTensorRunner, args)
        guard r.status == 0 else { throw TestFailure("the TFLite interpreter failed on \(model):\n\(r.stderr)") }
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let shapes = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [Any]] else {
            throw TestFailure("unexpected interpreter output: \(r.stdout)")
        }
        var tensors = [String: Tensor]()
        for (name, entry) in shapes {
            let index = entry[0] as! Int
            let shape = Shape((entry[1] as! [Int]))
            let dtype: DType = (entry[2] as! String) == "int8" ? .i8 : .f32
            let data = try Data(contentsOf: dir.appendingPathComponent("\(index).bin"))
            tensors[name] = try data.withUnsafeBytes { try Tensor(dtype: dtype, shape: shape, bytes: $0) }
        }
        return tensors
    }
}

/// A failure inside a test helper, with its message.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
