import Foundation
import KilnGraph
import KilnModels
import KilnONNX
import KilnTensor
import KilnTestSupport
import XCTest

/// Untrusted ONNX files: every problem is a thrown error naming it, never a crash.
final class ErrorTests: XCTestCase {
    /// A small valid model: y = Relu(Conv(x, w)).
    func model(_ edit: (inout ONNXModel) -> Void = { _ in }) -> ONNXModel {
        let w = ONNXTensor(name: "w", dataType: .float, dims: [2, 1, 1, 1], data: .floats([1, -1]))
        let x = ONNXValueInfo(name: "x", elemType: .float, shape: [.value(1), .value(1), .value(3), .value(3)])
        let y = ONNXValueInfo(name: "y", elemType: .float, shape: nil)
        var m = ONNXModel(
            irVersion: 8, opsetImports: [ONNXOpsetImport(version: 17)],
            graph: ONNXGraph(
                name: "g",
                nodes: [
                    ONNXNode(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [.ints("kernel_shape", [1, 1])]),
                    ONNXNode(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["y"]),
                ], initializers: [w], inputs: [x], outputs: [y]))
        edit(&m)
        return m
    }

    func load(_ m: ONNXModel) throws -> Graph { try ONNXFile.importBytes(ONNXCodec.encode(m), directory: nil) }

    func testTheValidModelImports() throws {
        let g = try load(model())
        XCTAssertEqual(g.nodes.map(\.op.kind), [.conv2d, .relu])
        let out = try Evaluator(g).run(["x": Tensor(shape: [1, 1, 3, 3], floats: (0..<9).map { Float($0) - 4 })])["y"]!
        XCTAssertEqual(out.floats, (0..<9).map { max(Float($0) - 4, 0) } + (0..<9).map { max(4 - Float($0), 0) })
    }

    func testStructuralErrorsNameTheProblem() throws {
        assertThrows(["node 'relu' (Relu)", "input 'nope' is never produced (a dangling input)"]) {
            try load(model { $0.graph.nodes[1].inputs = ["nope"] })
        }
        assertThrows(["node 'conv' (Conv)", "input 'y' is produced by a later node (the graph has a cycle"]) {
            try load(model { $0.graph.nodes[0].inputs[0] = "y" })
        }
        assertThrows(["node 'relu' (Relu6)", "operator 'Relu6' is not supported"]) { try load(model { $0.graph.nodes[1].opType = "Relu6" }) }
        assertThrows(["node 'conv' (Conv)", "attribute 'foo' is not supported"]) {
            try load(model { $0.graph.nodes[0].attributes.append(.int("foo", 1)) })
        }
        assertThrows(["node 'conv' (Conv)", "auto_pad 'MAGIC' is not supported"]) {
            try load(model { $0.graph.nodes[0].attributes.append(.string("auto_pad", "MAGIC")) })
        }
        assertThrows(["attribute 'kernel_shape' must be INTS, got FLOAT"]) {
            try load(model { $0.graph.nodes[0].attributes[0] = .float("kernel_shape", 1) })
        }
        assertThrows(["initializer 'w': shape [2,1,1,1] needs 2 elements, float_data has 3"]) {
            try load(model { $0.graph.initializers[0].data = .floats([1, 2, 3]) })
        }
        assertThrows(["initializer 'w': f32[2,1,1,1] needs 8 bytes of data, found 7"]) {
            try load(model { $0.graph.initializers[0].data = .raw([UInt8](repeating: 0, count: 7)) })
        }
        assertThrows(["initializer 'w' has shape [65536,65536,1,1], more than the 268435456 elements allowed"]) {
            try load(model { $0.graph.initializers[0].dims = [65536, 65536, 1, 1] })
        }
        assertThrows(["initializer 'w' has an invalid dimension in [-2, 1, 1, 1]"]) {
            try load(model { $0.graph.initializers[0].dims = [-2, 1, 1, 1] })
        }
        assertThrows(["graph input 'x' has an invalid dimension 0 at index 2"]) {
            try load(model { $0.graph.inputs[0].shape![2] = .value(0) })
        }
        assertThrows(["graph input 'x': dimension 2 is symbolic"]) { try load(model { $0.graph.inputs[0].shape![2] = .param("h") }) }
        assertThrows(["initializer 'w' has element type DOUBLE, which Kiln does not support"]) {
            try load(model { $0.graph.initializers[0].dataType = .double })
        }
        assertThrows(["opset 7 is not supported"]) { try load(model { $0.opsetImports = [ONNXOpsetImport(version: 7)] }) }
        assertThrows(["graph output 'z' is never produced"]) { try load(model { $0.graph.outputs[0].name = "z" }) }
        assertThrows(["node 'relu' (Relu)", "output 'c' is already produced elsewhere"]) {
            try load(model { $0.graph.nodes[1].outputs = ["c"] })
        }
        assertThrows(["node 'conv' (Conv)", "would have shape", "more than the"]) {
            try load(model { $0.graph.nodes[0].attributes.append(.ints("pads", [1 << 30, 0, 1 << 30, 0])) })
        }
        assertThrows(["metadata_props 'kiln.heads' is not valid"]) {
            try load(model { $0.metadataProps = [ONNXStringEntry("kiln.heads", "[{oops")] })
        }
    }

    func testExternalDataStaysInsideTheModelDirectory() throws {
        let dir = try temporaryDirectory(self)
        try Data([0, 0, 128, 63, 0, 0, 128, 191]).write(to: dir.appendingPathComponent("w.bin"))
        func write(_ location: String, offset: Int64 = 0, length: Int64? = 8) throws -> String {
            let path = dir.appendingPathComponent("m.onnx").path
            try FileIO.writeAtomically(ONNXCodec.encode(model { $0.graph.initializers[0].data = .external(location: location, offset: offset, length: length) }), to: path)
            return path
        }
        let g = try ONNXFile.read(try write("w.bin"))
        XCTAssertEqual(g.constants["w"]!.floats, [1, -1])
        assertThrows(["external data location '../w.bin' must be a relative path inside the model's directory"]) { try ONNXFile.read(try write("../w.bin")) }
        assertThrows(["must be a relative path"]) { try ONNXFile.read(try write("/etc/passwd")) }
        assertThrows(["external data range 4..<12 lies outside 'w.bin' (8 bytes)"]) { try ONNXFile.read(try write("w.bin", offset: 4)) }
        assertThrows(["external data length 4 does not match shape"]) { try ONNXFile.read(try write("w.bin", length: 4)) }
        assertThrows(["does not exist"]) { try ONNXFile.read(try write("missing.bin")) }
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link.bin").path, withDestinationPath: "/etc/hostname")
        assertThrows(["lies outside the model's directory"]) { try ONNXFile.read(try write("link.bin")) }
        assertThrows(["the model was not loaded from a file"]) {
            try ONNXFile.importBytes(try FileIO.read(try write("w.bin")), directory: nil)
        }
    }

    /// Truncations at many offsets and flipped bytes of a real exported model: each import
    /// either succeeds with a verified graph or throws; the process never crashes.
    func testCorruptFilesNeverCrash() throws {
        var g = try Zoo.build(ModelSpec(architecture: .tiny, heads: try Zoo.parseHeads("a:3,b:2:sigmoid"), inputHeight: 32, inputWidth: 32))
        randomizeBatchNorms(&g)
        let bytes = try ONNXFile.export(g, options: ONNXExportOptions(keepBatchNorm: true))
        var rng = SeededRandom(seed: testSeed)
        var errors = 0, imported = 0
        func attempt(_ b: [UInt8]) {
            do {
                let graph = try ONNXFile.importBytes(b, directory: nil)
                try graph.verify()
                _ = try Evaluator(graph).run(randomInputs(for: graph))
                imported += 1
            } catch {
                XCTAssertFalse(String(describing: error).isEmpty)
                errors += 1
            }
        }
        for k in 0..<300 { attempt(Array(bytes[..<(bytes.count * k / 300)])) }
        for _ in 0..<600 {
            var b = bytes
            for _ in 0..<rng.int(in: 1...4) {
                let i = rng.int(in: 0...(b.count - 1))
                b[i] ^= UInt8(truncatingIfNeeded: rng.int(in: 1...255))
            }
            attempt(b)
        }
        XCTAssertEqual(errors + imported, 900)
        XCTAssertGreaterThan(errors, 300, "most corruptions must be detected")
        attempt(bytes)
        XCTAssertGreaterThan(imported, 0)
    }
}
