import Foundation
import KilnTensor
import XCTest

/// Runs `.tflite` files in the TFLite interpreter (`ai_edge_litert`) from the test venv.
public enum TFLiteJudge {
    /// Python that loads a model, feeds float32 inputs from raw files, runs it and writes every
    /// output as raw float32 plus a JSON line `{name: shape}`. With a SignatureDef the inputs and
    /// outputs are matched by signature name; without one by tensor name.
    static let runner = """
        import sys, json, os
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        model, outdir = sys.argv[1], sys.argv[2]
        feeds = dict(a.split('=', 1) for a in sys.argv[3:])
        it = Interpreter(model_path=model)
        sigs = it.get_signature_list()
        result = {}
        if sigs:
            key = list(sigs.keys())[0]
            run = it.get_signature_runner(key)
            details = run.get_input_details()
            args = {n: np.fromfile(feeds[n], dtype=np.float32).reshape(d['shape']) for n, d in details.items()}
            result = run(**args)
            # The subgraph's output order (the signature list comes back sorted by name).
            order = [d['name'] for d in it.get_output_details()]
        else:
            it.allocate_tensors()
            for d in it.get_input_details():
                it.set_tensor(d['index'], np.fromfile(feeds[d['name']], dtype=np.float32).reshape(d['shape']))
            it.invoke()
            order = []
            for d in it.get_output_details():
                result[d['name']] = it.get_tensor(d['index'])
                order.append(d['name'])
        shapes = {}
        for i, n in enumerate(order):
            a = np.ascontiguousarray(result[n], dtype=np.float32)
            a.tofile(os.path.join(outdir, '%d.bin' % i))
            shapes[n] = [i, list(a.shape)]
        print(json.dumps({'outputs': shapes, 'order': order}))
        """

    /// Runs `model` on float `inputs` (by name) and returns every output by name (signature
    /// names when the model has a signature), plus the names of the subgraph's output tensors
    /// in the interpreter's order.
    public static func run(
        _ python: String, model: String, inputs: [String: Tensor]
    ) throws -> (outputs: [String: Tensor], order: [String]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tflite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [model, dir.path]
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
            let data = try Data(contentsOf: dir.appendingPathComponent("\(index).bin"))
            let t = try data.withUnsafeBytes { try Tensor(dtype: .f32, shape: shape, bytes: $0) }
            outputs[name] = t
        }
        return (outputs, order)
    }
}

/// A failure inside a test helper, with its message.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
