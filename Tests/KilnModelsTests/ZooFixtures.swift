import KilnGraph
import KilnModels
import KilnTensor
import XCTest

/// Graphs several tests read, built once per test process (ResNet50 alone is 25.6M parameters).
enum Fixtures {
    /// Every architecture with one 1000-class head at 224x224 (torchvision's configuration).
    static let imagenet: [Architecture: Graph] = {
        var graphs = [Architecture: Graph]()
        for a in Architecture.allCases {
            graphs[a] = try! Zoo.build(ModelSpec(architecture: a, heads: [HeadSpec(name: "logits", classes: 1000)]))
        }
        return graphs
    }()

    /// The document/screen model: ShuffleNetV2 x0.5 at 256x256 with two heads.
    static let twoHeaded: Graph = try! Zoo.build(
        ModelSpec(architecture: .shufflenetV2x0_5, heads: try! Zoo.parseHeads("screen:2,not_document:2"), inputHeight: 256, inputWidth: 256))
}

/// Sum of conv2d and linear MACs.
func totalMACs(_ g: Graph) throws -> Int {
    try g.statistics(types: g.verify()).reduce(0) { $0 + $1.macs }
}

/// `n` in millions rounded to 0.01.
func millions(_ n: Int) -> Double { (Double(n) / 10_000).rounded() / 100 }

func floats(_ g: Graph, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> [Float] {
    guard let t = g.constants[name] else {
        XCTFail("no constant '\(name)'", file: file, line: line)
        return []
    }
    return t.floats
}

func mean(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) } / Double(v.count) }

func std(_ v: [Float]) -> Double {
    let m = mean(v)
    return (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)).squareRoot()
}

/// Asserts that `body` throws an error whose description contains every one of `fragments`.
func assertThrows<T>(
    _ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        let text = String(describing: error)
        for f in fragments where !text.contains(f) {
            XCTFail("error \"\(text)\" does not contain \"\(f)\"", file: file, line: line)
        }
    }
}
