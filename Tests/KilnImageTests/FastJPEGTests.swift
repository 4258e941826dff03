import CKilnImageKernels
import CKilnTurboJPEG
import Foundation
@testable import KilnImage
import KilnTensor
import KilnTestSupport
import XCTest

/// Kiln's baseline JPEG decoder (ImageDecoder's fast path) against libjpeg-turbo on the same
/// bytes at every DCT scale and on every instruction set: the same size, at most 4 levels apart
/// (the float IDCT rounds where libjpeg's integer one truncates), 0.1 on average; files it does
/// not handle go to libjpeg-turbo and give its pixels exactly; damaged files never crash it and
/// end as libjpeg-turbo says (decoded, or the same error).
final class FastJPEGTests: XCTestCase {
    var isas: [kiln_image_isa] { [KILN_IMAGE_ISA_PORTABLE, KILN_IMAGE_ISA_AVX2, KILN_IMAGE_ISA_AVX512].filter { kiln_image_isa_supported($0) != 0 } }

    /// A photo-like image: gradients, edges, saturated colours and noise.
    func photo(_ w: Int, _ h: Int, channels: Int = 3, seed: UInt64 = 1) -> Image {
        var rng = SeededRandom(seed: seed)
        var p = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<channels {
                    var v = Double(x * (c + 2) * 255) / Double(max(w, 1) * 3) + Double(y * 200) / Double(max(h, 1))
                    if (x / 7 + y / 5) % 3 == c { v = 255 }
                    if (x * x + y * y) % 97 < 9 { v = 0 }
                    v += Double(rng.next() % 41) - 20
                    p[(y * w + x) * channels + c] = UInt8(max(0, min(255, v)))
                }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: p)
    }

    func decode(_ bytes: [UInt8], denominator d: Int, fast: Bool, isa: kiln_image_isa = kiln_image_isa_best(), channels: DecodeOptions.Channels = .rgb) throws -> (Image, String) {
        let info = try Image.info(bytes.withUnsafeBytes { $0 }, source: "x")
        let decoder = ImageDecoder(jpeg: fast ? .kiln : .libjpegTurbo, isa: isa)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-fastjpeg-\(UUID().uuidString).jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileIO.writeAtomically(bytes, to: dir.path)
        let target: DecodeOptions.Target = d == 1 ? .full : .atLeast(width: (info.width + d - 1) / d, height: (info.height + d - 1) / d)
        let v = try decoder.load(dir.path, options: DecodeOptions(channels: channels, target: target))
        let pixels = Array(UnsafeBufferPointer(start: v.base, count: v.height * v.rowStride))
        return (Image(width: v.width, height: v.height, channels: v.channels, pixels: pixels), decoder.lastPath)
    }

    func assertNear(_ a: Image, _ b: Image, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.sizeDescription, b.sizeDescription, what, file: file, line: line)
        guard a.pixels.count == b.pixels.count else { return }
        let diffs = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThanOrEqual(diffs.max() ?? 0, 4, what, file: file, line: line)
        // The mean is a statistic: only over enough samples (a 4x4 image has 48).
        if diffs.count >= 1000 {
            XCTAssertLessThan(Double(diffs.reduce(0, +)) / Double(diffs.count), 0.1, what, file: file, line: line)
        }
    }

    func testMatchesLibjpegTurboAtEveryScaleAndSubsampling() throws {
        let sizes = [(1, 1), (7, 5), (16, 16), (17, 33), (97, 61), (250, 131)]
        let subsamplings: [(TJSAMP, String)] = [(TJSAMP_444, "4:4:4"), (TJSAMP_422, "4:2:2"), (TJSAMP_420, "4:2:0")]
        var checked = 0
        for (w, h) in sizes {
            for quality in [40, 90, 100] {
                var files: [(String, [UInt8])] = subsamplings.map { s, name in
                    (name, (try? JPEG.encode(photo(w, h, seed: UInt64(w * h + quality)), quality: quality, subsampling: s)) ?? [])
                }
                files.append(("grey", try JPEG.encode(photo(w, h, channels: 1, seed: 3), quality: quality)))
                for (name, bytes) in files {
                    for d in [1, 2, 4, 8] {
                        let (reference, refPath) = try decode(bytes, denominator: d, fast: false)
                        XCTAssertEqual(refPath, "libjpeg-turbo")
                        for isa in isas {
                            let (got, path) = try decode(bytes, denominator: d, fast: true, isa: isa)
                            XCTAssertEqual(path, "kiln", "\(name) \(w)x\(h) q\(quality) 1/\(d)")
                            assertNear(got, reference, "\(name) \(w)x\(h) q\(quality) 1/\(d) isa \(isa.rawValue)")
                            checked += 1
                        }
                        if name == "grey" {
                            let (native, _) = try decode(bytes, denominator: d, fast: true, channels: .native)
                            XCTAssertEqual(native.channels, 1)
                            assertNear(native.rgb(), reference, "grey native 1/\(d)")
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 200)
    }

    /// 4:4:0 (vertical-only chroma subsampling) is left to libjpeg-turbo: its pixels, exactly.
    func testUnsupportedLayoutsFallBackExactly() throws {
        let bytes = try JPEG.encode(photo(40, 30), quality: 85, subsampling: TJSAMP_440)
        for d in [1, 2] {
            let (reference, _) = try decode(bytes, denominator: d, fast: false)
            let (got, path) = try decode(bytes, denominator: d, fast: true)
            XCTAssertEqual(path, "libjpeg-turbo")
            XCTAssertEqual(got, reference)
        }
    }

    /// Truncated files, damaged bytes and cut headers: never a crash or a hang; the fast path
    /// decodes a file exactly when libjpeg-turbo does, and otherwise gives libjpeg-turbo's error.
    func testDamagedFilesEndAsLibjpegTurboSays() throws {
        let original = try JPEG.encode(photo(64, 48), quality: 90)
        var rng = SeededRandom(seed: 11)
        var variants: [[UInt8]] = []
        for cut in stride(from: 2, to: original.count, by: max(1, original.count / 60)) { variants.append(Array(original.prefix(cut))) }
        let rounds = Int(ProcessInfo.processInfo.environment["KILN_FUZZ_ROUNDS"] ?? "") ?? 300
        // Where the headers end: damage there is damage to tables and markers.
        let headerEnd = (0..<(original.count - 1)).first { original[$0] == 0xFF && original[$0 + 1] == 0xDA }! + 14
        for round in 0..<rounds {
            var v = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(round % 2 == 0 ? headerEnd : v.count))
                v[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            variants.append(v)
        }
        var agreed = 0
        for v in variants {
            for d in [1, 2] {
                let reference = Result { try decode(v, denominator: d, fast: false).0 }
                let got = Result { try decode(v, denominator: d, fast: true).0 }
                switch (reference, got) {
                case (.success(let a), .success(let b)):
                    XCTAssertEqual(a.sizeDescription, b.sizeDescription)
                    agreed += 1
                case (.failure(let a), .failure(let b)):
                    XCTAssertEqual((a as? ImageError)?.problem, (b as? ImageError)?.problem)
                    agreed += 1
                default: XCTFail("libjpeg-turbo: \(reference), fast path: \(got)")
                }
            }
        }
        XCTAssertEqual(agreed, variants.count * 2)
    }

    /// The decoder's C code under AddressSanitizer and UBSan: `Tests/Fuzz/jpeg_fuzz.c`, built with
    /// the toolchain's clang together with CKilnImageKernels, decodes damaged copies of files of
    /// every layout (grey, 4:4:4, 4:2:2, 4:2:0, odd sizes, restart markers, optimised tables) on
    /// every instruction set, into buffers of exactly the decoded size. Any invalid access or
    /// undefined behaviour aborts it with the sanitizer's report. `KILN_FUZZ_ROUNDS` raises the
    /// number of damaged copies per file (default 3,000).
    func testDamagedFilesUnderSanitizers() throws {
        let dir = try temporaryFolder("fastjpeg-sanitizers")
        defer { try? FileManager.default.removeItem(at: dir) }
        var seeds = [String]()
        for (w, h) in [(37, 29), (203, 151)] {
            for (name, sub) in [("444", TJSAMP_444), ("422", TJSAMP_422), ("420", TJSAMP_420)] {
                let path = dir.appendingPathComponent("\(w)-\(name).jpg").path
                try Data(try JPEG.encode(photo(w, h), quality: 90, subsampling: sub)).write(to: URL(fileURLWithPath: path))
                seeds.append(path)
            }
            let grey = dir.appendingPathComponent("\(w)-grey.jpg").path
            try Data(try JPEG.encode(photo(w, h, channels: 1), quality: 80)).write(to: URL(fileURLWithPath: grey))
            seeds.append(grey)
        }
        let python = try PythonJudge.require(["PIL"])
        let script = """
            import sys
            from PIL import Image
            d = sys.argv[1]
            im = Image.open(d + '/203-444.jpg').convert('RGB')
            im.save(d + '/restart.jpg', quality=90, restart_marker_blocks=3)
            im.save(d + '/optimized.jpg', quality=95, optimize=True, subsampling=1)
            im.convert('L').save(d + '/grey-restart.jpg', quality=80, restart_marker_rows=1)
            """
        let made = try PythonJudge.runScript(python, script, [dir.path])
        XCTAssertEqual(made.status, 0, made.stderr)
        seeds += ["restart.jpg", "optimized.jpg", "grey-restart.jpg"].map { dir.appendingPathComponent($0).path }

        let root = repositoryRoot
        let sources = root.appendingPathComponent("Sources/CKilnImageKernels")
        let cFiles = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0.hasSuffix(".c") }.sorted()
            .map { sources.appendingPathComponent($0).path }
        let binary = dir.appendingPathComponent("jpeg_fuzz").path
        let build = try runProcess(
            "/usr/bin/env",
            ["clang", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
             "-I", sources.path, "-I", sources.appendingPathComponent("include").path]
                + cFiles + [root.appendingPathComponent("Tests/Fuzz/jpeg_fuzz.c").path, "-lm", "-o", binary])
        XCTAssertEqual(build.status, 0, "clang (the Swift toolchain's) with -fsanitize=address,undefined: \(build.stderr)")
        guard build.status == 0 else { return }
        let rounds = ProcessInfo.processInfo.environment["KILN_FUZZ_ROUNDS"] ?? "3000"
        let run = try runProcess(binary, [rounds, "11"] + seeds, environment: ["ASAN_OPTIONS": "allocator_may_return_null=1"])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.hasPrefix("decoded "), run.stdout)
        // The undamaged files decode: the fuzz ran the decoder's whole path, not only its refusals.
        let decoded = Int(run.stdout.split(separator: " ")[1].filter(\.isNumber)) ?? 0
        XCTAssertGreaterThanOrEqual(decoded, seeds.count * isas.count * 4, run.stdout)
    }

    /// Pillow's encoder options the TurboJPEG API does not offer: restart markers, optimised
    /// Huffman tables, progressive files (left to libjpeg-turbo), Adobe CMYK.
    func testFilesFromPillow() throws {
        let python = try PythonJudge.require(["PIL", "numpy"])
        let dir = try temporaryFolder("fastjpeg-pillow")
        defer { try? FileManager.default.removeItem(at: dir) }
        try photo(203, 151).write(to: dir.appendingPathComponent("src.png").path)
        let script = """
            import sys
            from PIL import Image
            d = sys.argv[1]
            im = Image.open(d + '/src.png').convert('RGB')
            im.save(d + '/restart.jpg', quality=90, restart_marker_blocks=5)
            im.save(d + '/restart_rows.jpg', quality=75, restart_marker_rows=1, subsampling=0)
            im.save(d + '/optimized.jpg', quality=95, optimize=True, subsampling=1)
            im.save(d + '/progressive.jpg', quality=90, progressive=True)
            im.convert('L').save(d + '/grey_restart.jpg', quality=80, restart_marker_blocks=3)
            im.convert('CMYK').save(d + '/cmyk.jpg', quality=95)
            """
        let r = try PythonJudge.runScript(python, script, [dir.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for (name, fastExpected) in [
            ("restart.jpg", true), ("restart_rows.jpg", true), ("optimized.jpg", true), ("grey_restart.jpg", true),
            ("progressive.jpg", false), ("cmyk.jpg", false),
        ] {
            let bytes = try FileIO.read(dir.appendingPathComponent(name).path)
            for d in [1, 2, 4] {
                let (reference, _) = try decode(bytes, denominator: d, fast: false)
                let (got, path) = try decode(bytes, denominator: d, fast: true)
                XCTAssertEqual(path == "kiln", fastExpected, "\(name): \(path)")
                if fastExpected { assertNear(got, reference, "\(name) 1/\(d)") } else { XCTAssertEqual(got, reference, name) }
            }
        }
    }
}
