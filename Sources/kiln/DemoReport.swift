import Foundation
import KilnGraph
import KilnTensor
import KilnTrain

/// A table of the demo's report, rendered as aligned Markdown (terminal) and as HTML.
struct DemoTable {
    var id: String
    var title: String
    var header: [String]
    var rows: [[String]]
    var note: String? = nil

    /// Markdown with padded columns; numbers (anything starting with a digit, sign or dash) right-aligned.
    var text: String {
        let widths = header.indices.map { c in ([header[c]] + rows.map { c < $0.count ? $0[c] : "" }).map(\.count).max()! }
        func numeric(_ s: String) -> Bool { s.first.map { "0123456789+-−–".contains($0) } ?? false }
        func line(_ cells: [String]) -> String {
            "| "
                + header.indices.map { c in
                    let s = c < cells.count ? cells[c] : ""
                    let pad = String(repeating: " ", count: widths[c] - s.count)
                    return c > 0 && numeric(s) ? pad + s : s + pad
                }.joined(separator: " | ") + " |"
        }
        var lines = ["## \(title)", "", line(header)]
        lines.append("|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|")
        lines += rows.map(line)
        if let note { lines += ["", note] }
        return lines.joined(separator: "\n")
    }

    var html: String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var h = "<h2 id=\"\(id)\">\(esc(title))</h2>\n<table>\n<tr>"
        h += header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n"
        for r in rows { h += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
        h += "</table>\n"
        if let note { h += "<p class=\"note\">\(esc(note))</p>\n" }
        return h
    }
}

/// What the demo measured, gathered from the files its commands wrote: the runs' metrics, the
/// JSON outputs of export, verify, eval and bench, and the files' sizes.
struct DemoReport {
    let plan: DemoPlan
    var timings: [(title: String, seconds: Double)]
    var seconds: Double
    /// Structured figures for report.json.
    var data: [String: Any] = [:]
    var tables: [DemoTable] = []

    init(plan: DemoPlan, timings: [(title: String, seconds: Double)], seconds: Double) throws {
        self.plan = plan
        self.timings = timings
        self.seconds = seconds
        data["settings"] = [
            "out": plan.out, "quick": plan.quick, "threads": plan.threads, "peers": plan.peers, "epochs": plan.epochs,
            "train_images": plan.trainImages, "valid_images": plan.validImages, "test_images": plan.testImages,
            "calibration_samples": plan.calibrationSamples, "bench_images": plan.benchImages,
        ]
        data["commands"] = plan.steps.flatMap { $0.commands.map(\.line) }
        data["steps"] = timings.map { ["title": $0.title, "seconds": $0.seconds] as [String: Any] }
        data["total_seconds"] = seconds
        try training()
        try sizes()
        try verification()
        try evaluation()
        try bench()
        tables.append(
            DemoTable(
                id: "timings", title: "Time per step", header: ["step", "seconds"],
                rows: timings.map { [$0.title, String(format: "%.1f", $0.seconds)] }
                    + [["total", String(format: "%.1f", seconds)]]))
    }

    // MARK: - Reading what the commands wrote

    func object(_ path: String) throws -> [String: Any] {
        let bytes = try FileIO.read(path, limit: 64 << 20)
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw CLIError("\(path): not a JSON object")
        }
        return o
    }

    static func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func pct(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "–" }
    static func ms(_ v: Double?) -> String { v.map { String(format: "%.3f", $0 * 1e3) } ?? "–" }

    // MARK: - Sections

    mutating func training() throws {
        var rows = [[String]]()
        var list = [[String: Any]]()
        for v in plan.variants {
            let metrics = try String(decoding: FileIO.read(plan.path("\(v.name)/metrics.jsonl"), limit: 64 << 20), as: UTF8.self)
            let records = EpochRecord.decodeLines(metrics)
            guard let last = records.last else { throw CLIError("\(plan.path("\(v.name)/metrics.jsonl")): no epoch recorded") }
            let best = records.first { $0.epoch == last.bestEpoch } ?? last
            let seconds = records.map(\.seconds).reduce(0, +)
            let valid = (best.valid ?? [:]).keys.sorted().map { head in
                String(format: "%@ %.4f", head, best.valid![head]!["accuracy"] ?? .nan)
            }
            rows.append([
                v.title, "\(records.count)", String(format: "%.0f", seconds),
                String(format: "%.0f", last.imagesPerSecond), "\(best.epoch)",
                "\(last.metric ?? "valid_loss") \(String(format: "%.4f", best.metricValue ?? .nan))",
                valid.joined(separator: ", "),
            ])
            list.append([
                "variant": v.name, "recipe": v.recipe, "epochs": records.count, "seconds": seconds,
                "best_epoch": best.epoch, "metric": last.metric ?? "valid_loss", "best": best.metricValue ?? NSNull(),
                "valid": best.valid ?? [:], "model": plan.model(v),
            ])
        }
        data["training"] = list
        tables.append(
            DemoTable(
                id: "training", title: "Training (best checkpoint by validation)",
                header: ["model", "epochs", "seconds", "img/s", "best epoch", "checkpoint metric", "validation accuracy"],
                rows: rows,
                note: "\(grouped(plan.trainImages)) training and \(grouped(plan.validImages)) validation images; "
                    + "model.kiln holds the best epoch's weights."))
    }

    mutating func sizes() throws {
        struct Format {
            var label: String
            var file: (DemoPlan.Variant) -> String
            var json: String?
        }
        let plan = self.plan
        let formats = [
            Format(label: "Kiln .kiln (training graph)", file: { plan.model($0) }, json: nil),
            Format(label: "ONNX float32", file: { plan.onnx($0) }, json: "onnx"),
            Format(label: "TFLite float32", file: { plan.tflite($0) }, json: "tflite"),
            Format(label: "TFLite int8", file: { plan.int8($0) }, json: "int8"),
        ]
        var rows = [[String]]()
        var list = [[String: Any]]()
        for f in formats {
            let bytes = plan.variants.map { Self.fileSize(f.file($0)) }
            var arenas = [Int?]()
            if let j = f.json {
                for v in plan.variants {
                    arenas.append((try object(plan.jsonPath("export-\(v.name)-\(j)"))["arena_bytes"] as? NSNumber)?.intValue)
                }
            }
            let delta = bytes[1] - bytes[0]
            rows.append([
                f.label, grouped(bytes[0]), grouped(bytes[1]), (delta >= 0 ? "+" : "-") + grouped(abs(delta)),
                bytes[0] > 0 ? String(format: "%+.1f%%", Double(delta) / Double(bytes[0]) * 100) : "–",
                arenas.count == 2 && arenas[0] != nil && arenas[1] != nil
                    ? "\(grouped(arenas[0]!)) / \(grouped(arenas[1]!))" : "–",
            ])
            var entry: [String: Any] = [
                "format": f.label, "one_head_bytes": bytes[0], "two_heads_bytes": bytes[1], "delta_bytes": delta,
                "files": plan.variants.map { f.file($0) },
            ]
            if arenas.count == 2 { entry["arena_bytes"] = arenas.map { $0 ?? 0 } }
            list.append(entry)
        }
        data["sizes"] = list
        tables.append(
            DemoTable(
                id: "sizes", title: "Size: one head vs two heads, every format",
                header: ["format", "one head (bytes)", "two heads (bytes)", "delta", "delta %", "runtime arena (one / two)"],
                rows: rows,
                note: "The second head costs its own linear layer; the arena is the activation memory Kiln's runtime plans "
                    + "for the file (exact). The .kiln file holds the unfolded training graph (batch norms separate)."))
    }

    mutating func verification() throws {
        var rows = [[String]]()
        var list = [[String: Any]]()
        for v in plan.variants {
            for file in [plan.tflite(v), plan.int8(v)] {
                let o = try object(plan.jsonPath("verify-\(DemoPlan.stem(file))"))
                let heads = (o["heads"] as? [[String: Any]]) ?? []
                let errors = heads.map { h in
                    "\(h["name"] as? String ?? "?") \(String(format: "%.2g", Self.number(h["max_abs_error"]) ?? .nan))"
                }
                let passed = (o["passed"] as? Bool) ?? false
                rows.append([
                    file, errors.joined(separator: ", "), String(format: "%.0e", Self.number(o["tolerance"]) ?? .nan),
                    passed ? "passed" : "FAILED",
                ])
                list.append(["file": file, "passed": passed, "heads": heads, "isa": o["isa"] ?? ""])
            }
        }
        data["verify"] = list
        tables.append(
            DemoTable(
                id: "verify", title: "Verification: Kiln's runtime vs the reference evaluator (self-tests)",
                header: ["file", "max abs difference per head", "tolerance", "result"], rows: rows,
                note: "Each file carries a seed and the outputs Kiln's reference evaluator computed (the int8 files: its "
                    + "integer reference); `kiln verify` reruns them here. The TFLite interpreter and onnxruntime check "
                    + "the same files in the latency section (top-1 agreement)."))
    }

    mutating func evaluation() throws {
        var rows = [[String]]()
        var list = [[String: Any]]()
        for v in plan.variants {
            let reference = try object(plan.jsonPath("eval-\(v.name)-kiln"))
            let float = try object(plan.jsonPath("eval-\(v.name)-tflite"))
            let int8 = try object(plan.jsonPath("eval-\(v.name)-int8"))
            func accuracy(_ o: [String: Any], _ head: String) -> Double? {
                Self.number(((o["heads"] as? [String: Any])?[head] as? [String: Any])?["accuracy"])
            }
            func f1(_ o: [String: Any], _ head: String) -> Double? {
                Self.number((((o["heads"] as? [String: Any])?[head] as? [String: Any])?["macro"] as? [String: Any])?["f1"])
            }
            let heads = ((reference["heads"] as? [String: Any]) ?? [:]).keys.sorted()
            for h in heads {
                let a = accuracy(reference, h), b = accuracy(float, h), c = accuracy(int8, h)
                let cost = b.flatMap { b in c.map { (b - $0) * 100 } }
                rows.append([
                    v.title, h, Self.pct(a), Self.pct(b), Self.pct(c),
                    cost.map { String(format: "%.2f points", $0) } ?? "–",
                    f1(float, h).map { String(format: "%.4f", $0) } ?? "–",
                    f1(int8, h).map { String(format: "%.4f", $0) } ?? "–",
                ])
                list.append([
                    "variant": v.name, "head": h, "samples": reference["samples"] ?? 0, "kiln": a ?? NSNull(),
                    "tflite_float32": b ?? NSNull(), "tflite_int8": c ?? NSNull(), "int8_cost_points": cost ?? NSNull(),
                ])
            }
        }
        data["evaluation"] = list
        tables.append(
            DemoTable(
                id: "evaluation", title: "Accuracy: float vs int8 on \(grouped(plan.testImages)) test images",
                header: [
                    "model", "head", ".kiln (reference)", "TFLite float32", "TFLite int8", "int8 cost",
                    "macro F1 float32", "macro F1 int8",
                ], rows: rows,
                note: "`kiln eval` on each file: the .kiln model through the training graph, the TFLite files through "
                    + "Kiln's runtime; int8 cost = float32 accuracy - int8 accuracy."))
    }

    mutating func bench() throws {
        let o = try object(plan.jsonPath("bench"))
        let models = (o["models"] as? [[String: Any]]) ?? []
        var rows = [[String]]()
        var peerRows = [[String]]()
        var list = [[String: Any]]()
        for m in models {
            let input = m["input"] as? [String: Any]
            let size = Self.number(input?["height"]).map { h in
                let w = Self.number(input?["width"]) ?? h
                return h == w ? " (\(Int(h)))" : " (\(Int(h))x\(Int(w)))"
            } ?? ""
            let name = (m["name"] as? String ?? "?") + size
            let e2e = m["end_to_end"] as? [String: Any] ?? [:]
            let only = m["model_only"] as? [String: Any]
            let heads = (m["heads"] as? [[String: Any]]) ?? []
            let metrics = heads.map { h -> (String, String) in
                let x = h["metrics"] as? [String: Any]
                let n = h["name"] as? String ?? "?"
                return (
                    "\(n) " + (Self.number(x?["precision"]).map { String(format: "%.3f", $0) } ?? "–"),
                    "\(n) " + (Self.number(x?["recall"]).map { String(format: "%.3f", $0) } ?? "–")
                )
            }
            rows.append([
                name, metrics.map(\.0).joined(separator: ", "), metrics.map(\.1).joined(separator: ", "),
                Self.number(e2e["mean"]).map { String(format: "%.6f", $0) } ?? "–", Self.ms(Self.number(e2e["p50"])),
                Self.ms(Self.number(only?["p50"])), grouped(Self.number(m["file_bytes"]).map { Int($0) } ?? 0),
                Self.number(m["arena_bytes"]).map { grouped(Int($0)) } ?? "–",
            ])
            for p in (m["peers"] as? [[String: Any]]) ?? [] {
                let pe = p["end_to_end"] as? [String: Any] ?? [:]
                let ratios = p["kiln_over_peer"] as? [String: Any] ?? [:]
                let agreement = ((p["top_one_agreement"] as? [Any]) ?? []).compactMap(Self.number)
                peerRows.append([
                    name, p["pipeline"] as? String ?? p["engine"] as? String ?? "?", Self.ms(Self.number(pe["p50"])),
                    Self.number(ratios["end_to_end_p50"]).map { String(format: "%.2fx", $0) } ?? "–",
                    Self.number(ratios["model_only_p50"]).map { String(format: "%.2fx", $0) } ?? "–",
                    agreement.map { String(format: "%.1f%%", $0 * 100) }.joined(separator: ", "),
                ])
            }
            list.append(m)
        }
        data["bench"] = [
            "images": o["images"] ?? 0, "threads": o["threads"] ?? 1, "isa": o["isa"] ?? "", "machine": o["machine"] ?? "",
            "runs": o["runs"] ?? 0, "models": list, "notes": o["notes"] ?? [], "peer_versions": o["peer_versions"] ?? [:],
        ]
        let images = Self.number(o["images"]).map { Int($0) } ?? 0
        tables.append(
            DemoTable(
                id: "latency", title: "Latency per image, file to probabilities (Kiln's runtime, one thread)",
                header: [
                    "Model (img size)", "Precision", "Recall", "Latency (s)", "p50 (ms)", "model only p50 (ms)", "file bytes",
                    "arena bytes",
                ], rows: rows,
                note: "\(images) test PNGs, batch 1, after warm-up; latency = read + decode + resize/normalise (or "
                    + "quantize) + invoke + softmax. Precision and recall: binary heads their positive class, others "
                    + "the macro average. \(o["machine"] as? String ?? ""), \(o["isa"] as? String ?? "")."))
        if !peerRows.isEmpty {
            tables.append(
                DemoTable(
                    id: "peers", title: "The same files and images through the peers",
                    header: ["model", "peer pipeline", "p50 (ms)", "Kiln / peer, p50", "Kiln / peer, model only", "top-1 agreement per head"],
                    rows: peerRows,
                    note: "Measured in the same run, alternating with Kiln (below 1x: Kiln is faster). Top-1 agreement: "
                        + "images whose top class per head is the same as Kiln's."))
        } else {
            tables.append(
                DemoTable(
                    id: "peers", title: "Peers", header: ["note"],
                    rows: [[plan.peers ? "the peers did not run: \(((o["notes"] as? [String]) ?? []).joined(separator: "; "))"
                        : "peers not run (--no-peers, or no .venv: make venv)"]]))
        }
    }

    // MARK: - Rendering

    func json() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    func text() -> String {
        "\n" + tables.map(\.text).joined(separator: "\n\n") + "\n"
    }

    /// One self-contained page: inline CSS, no scripts, no external assets.
    func html() -> String {
        let style = """
            body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}\
            table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;\
            text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}th{background:#f2f2f2}\
            .note{color:#555;font-size:.9em;max-width:60em}code{background:#f4f4f4;padding:0 .2em}
            """
        var body = "<h1>Kiln demo</h1>\n<p>Fashion-MNIST, ResNet18 28x28: one head vs two heads, "
        body += "float vs int8. \(plan.quick ? "Quick schedule (tiny: the accuracy means nothing). " : "")"
        body += String(format: "Total time %@.</p>\n", DemoRunner.clock(seconds))
        body += tables.map(\.html).joined()
        body += "<h2 id=\"commands\">Commands</h2>\n<pre>"
        body += plan.steps.flatMap { $0.commands.map(\.line) }.map {
            $0.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        }.joined(separator: "\n")
        body += "</pre>\n"
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Kiln demo</title><style>\(style)</style></head>"
            + "<body>\n\(body)</body></html>\n"
    }
}
