// Reading a .tflite file: the flatbuffers Verifier and Kiln's full read (Verifier + index,
// shape and buffer checks + decoding the tables), next to copying the same bytes once, in one
// process. Usage (release build):
//   swift build -c release --product tflite-read-bench
//   .build/release/tflite-read-bench MODEL.tflite [ROUNDS]
import CKilnTFLiteSchema
import Foundation
import KilnTFLiteSchema

let args = CommandLine.arguments
guard args.count >= 2 else {
    FileHandle.standardError.write(Data("usage: tflite-read-bench MODEL.tflite [ROUNDS]\n".utf8))
    exit(2)
}
let rounds = args.count > 2 ? Int(args[2]) ?? 50 : 50
let file: TFLiteModelFile
do {
    file = try TFLiteModelFile(contentsOf: args[1])
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
let bytes = file.bytes
let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
defer { copy.deallocate() }
copy.copyMemory(from: bytes)  // fault the mapping in before timing

/// The best of `rounds` runs of `body`, in milliseconds.
func best(_ body: () -> Void) -> Double {
    var bestNs = UInt64.max
    for _ in 0..<rounds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        bestNs = min(bestNs, DispatchTime.now().uptimeNanoseconds - t0)
    }
    return Double(bestNs) / 1e6
}

var sink = 0
let memcpyMs = best { copy.copyMemory(from: bytes); sink &+= Int(copy[copy.count / 2]) }
let verifyMs = best { sink &+= kiln_tflite_verify(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count) ? 1 : 0 }
let readMs = best { sink &+= (try? TFLiteModelView(bytes: bytes))?.subgraphs.count ?? 0 }
let sg = file.model.subgraphs[0]
print("\(args[1]): \(bytes.count) bytes, \(sg.operators.count) operators, \(sg.tensors.count) tensors (best of \(rounds))")
print(String(format: "  copy the bytes (peer)       %8.3f ms", memcpyMs))
print(String(format: "  flatbuffers Verifier        %8.3f ms  (%.2fx the copy)", verifyMs, verifyMs / memcpyMs))
print(String(format: "  TFLiteModelView (full read) %8.3f ms  (%.2fx the copy)", readMs, readMs / memcpyMs))
if sink == 42 { print("") }
