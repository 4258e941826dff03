import Foundation

/// The run report: one self-contained HTML file (no scripts, no external resources) with
/// inline SVG plots: loss curves, validation metrics per epoch, per-head tables, normalised
/// confusion matrices and threshold-vs-accuracy curves.
public enum Report {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func fmt(_ v: Double, _ digits: Int = 4) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "–" }

    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var dashed = false
        public var markers = false
        public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false, markers: Bool = false) {
            self.name = name
            self.points = points
            self.dashed = dashed
            self.markers = markers
        }
    }

    /// A line chart as SVG, axes with ticks, a legend; `marks` draws vertical guide lines.
    public static func lineChart(
        _ series: [Series], xLabel: String, yLabel: String, width: Int = 640, height: Int = 300,
        yRange: ClosedRange<Double>? = nil, marks: [(x: Double, label: String)] = []
    ) -> String {
        let all = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return "<p class=\"note\">no data yet</p>" }
        let (l, r, t, b) = (56.0, 16.0, 16.0, 40.0)
        let pw = Double(width) - l - r
        let ph = Double(height) - t - b
        var x0 = all.map(\.x).min()!
        var x1 = all.map(\.x).max()!
        var y0 = yRange?.lowerBound ?? all.map(\.y).min()!
        var y1 = yRange?.upperBound ?? all.map(\.y).max()!
        if x1 - x0 < 1e-12 {
            x0 -= 0.5
            x1 += 0.5
        }
        if y1 - y0 < 1e-12 {
            y0 -= 0.5
            y1 += 0.5
        }
        if yRange == nil {
            let pad = (y1 - y0) * 0.05
            y0 -= pad
            y1 += pad
        }
        func sx(_ x: Double) -> Double { l + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { t + (1 - (y - y0) / (y1 - y0)) * ph }
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect x=\"\(l)\" y=\"\(t)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"#fff\" stroke=\"#bbb\"/>"
        for k in 0...4 {
            let y = y0 + (y1 - y0) * Double(k) / 4
            svg +=
                "<line x1=\"\(l)\" x2=\"\(l + pw)\" y1=\"\(fmt(sy(y), 1))\" y2=\"\(fmt(sy(y), 1))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(l - 4)\" y=\"\(fmt(sy(y) + 4, 1))\" text-anchor=\"end\">\(tick(y))</text>"
            let x = x0 + (x1 - x0) * Double(k) / 4
            svg += "<text x=\"\(fmt(sx(x), 1))\" y=\"\(fmt(t + ph + 14, 1))\" text-anchor=\"middle\">\(tick(x))</text>"
        }
        for m in marks {
            svg +=
                "<line x1=\"\(fmt(sx(m.x), 1))\" x2=\"\(fmt(sx(m.x), 1))\" y1=\"\(t)\" y2=\"\(t + ph)\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>"
            svg += "<text x=\"\(fmt(sx(m.x) + 3, 1))\" y=\"\(t + 12)\" fill=\"#555\">\(escape(m.label))</text>"
        }
        var legend = ""
        for (k, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            guard !pts.isEmpty else { continue }
            let color = palette[k % palette.count]
            let path = pts.map { "\(fmt(sx($0.x), 1)),\(fmt(sy($0.y), 1))" }.joined(separator: " ")
            svg +=
                "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\"\(s.dashed ? " stroke-dasharray=\"5,3\"" : "") points=\"\(path)\"/>"
            if s.markers || pts.count == 1 {
                for p in pts {
                    svg += "<circle cx=\"\(fmt(sx(p.x), 1))\" cy=\"\(fmt(sy(p.y), 1))\" r=\"2.8\" fill=\"\(color)\"/>"
                }
            }
            let ly = t + 14 + Double(k) * 14
            legend +=
                "<rect x=\"\(l + pw - 154)\" y=\"\(ly - 11)\" width=\"150\" height=\"14\" fill=\"#fff\" fill-opacity=\"0.8\"/>"
            legend +=
                "<line x1=\"\(l + pw - 150)\" x2=\"\(l + pw - 130)\" y1=\"\(ly - 4)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"5,3\"" : "")/>"
            legend += "<text x=\"\(l + pw - 126)\" y=\"\(ly)\">\(escape(s.name))</text>"
        }
        svg += legend
        svg += "<text x=\"\(l + pw / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg +=
            "<text transform=\"translate(14,\(t + ph / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        return svg + "</svg>"
    }

    static func tick(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1000 || (a > 0 && a < 0.01) { return String(format: "%.1e", v) }
        if a >= 10 { return String(format: "%.0f", v) }
        return String(format: "%.2f", v)
    }

    /// A confusion matrix as an SVG heat map: colour by the row-normalised value, text with the
    /// count and the percentage of the row.
    public static func confusionMatrix(_ counts: [[Int]], rowLabels: [String], columnLabels: [String], title: String)
        -> String
    {
        let n = counts.count
        let m = counts.first?.count ?? 0
        guard n > 0, m > 0 else { return "" }
        let cell = m > 12 ? 22.0 : 48.0
        let left = 10 + Double(min(24, rowLabels.map(\.count).max() ?? 4)) * 6.5
        let top = 34 + Double(min(24, columnLabels.map(\.count).max() ?? 4)) * 5.0
        let w = Int(left + cell * Double(m) + 70)
        let h = Int(top + cell * Double(n) + 10)
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"sans-serif\" font-size=\"\(m > 12 ? 8 : 11)\">"
        svg += "<text x=\"\(left)\" y=\"12\" font-weight=\"bold\">\(escape(title))</text>"
        svg += "<text x=\"\(left)\" y=\"24\" fill=\"#666\">rows: truth, columns: prediction</text>"
        for (j, label) in columnLabels.enumerated() {
            let x = left + cell * (Double(j) + 0.5)
            svg +=
                "<text transform=\"translate(\(fmt(x, 1)),\(fmt(top - 4, 1))) rotate(-45)\">\(escape(String(label.prefix(24))))</text>"
        }
        for i in 0..<n {
            let total = counts[i].reduce(0, +)
            let y = top + cell * Double(i)
            svg +=
                "<text x=\"\(fmt(left - 4, 1))\" y=\"\(fmt(y + cell / 2 + 4, 1))\" text-anchor=\"end\">\(escape(String(rowLabels[i].prefix(24))))</text>"
            for j in 0..<m {
                let v = total > 0 ? Double(counts[i][j]) / Double(total) : 0
                let shade = Int(255 - 200 * v)
                let fill = i == j ? "rgb(\(shade),\(min(255, shade + 40)),255)" : "rgb(255,\(shade),\(shade))"
                let x = left + cell * Double(j)
                svg +=
                    "<rect x=\"\(fmt(x, 1))\" y=\"\(fmt(y, 1))\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(fill)\" stroke=\"#fff\"><title>\(escape(rowLabels[i])) → \(escape(columnLabels[j])): \(counts[i][j]) (\(fmt(100 * v, 1))%)</title></rect>"
                if m <= 12 {
                    svg +=
                        "<text x=\"\(fmt(x + cell / 2, 1))\" y=\"\(fmt(y + cell / 2, 1))\" text-anchor=\"middle\">\(counts[i][j])</text>"
                    svg +=
                        "<text x=\"\(fmt(x + cell / 2, 1))\" y=\"\(fmt(y + cell / 2 + 12, 1))\" text-anchor=\"middle\" fill=\"#555\" font-size=\"9\">\(fmt(100 * v, 0))%</text>"
                }
            }
        }
        return svg + "</svg>"
    }

    /// The whole page.
    public static func html(
        title: String, history: [EpochRecord], epochs: Int, metric: String, final: EvaluationResult?, split: String?,
        thresholds: [String: [Float]], recipe: String?
    ) -> String {
        var body = "<h1>\(escape(title))</h1>"
        let done = history.last?.epoch ?? 0
        body += "<p>\(done) of \(epochs) epochs"
        if let last = history.last, let best = last.best, let be = last.bestEpoch {
            body += " · best \(escape(metric)) \(fmt(best)) at epoch \(be)"
        }
        if let last = history.last { body += " · \(fmt(last.imagesPerSecond, 0)) img/s in the last epoch" }
        body += "</p>"

        // Loss curves: training per slice of an epoch, validation per epoch.
        var trainPoints = [(x: Double, y: Double)]()
        for r in history {
            let k = r.trainCurve.count
            for (i, v) in r.trainCurve.enumerated() {
                trainPoints.append((Double(r.epoch - 1) + Double(i + 1) / Double(k), v))
            }
        }
        let validPoints = history.compactMap { r in r.validLoss.map { (x: Double(r.epoch), y: $0) } }
        body += "<h2>Loss</h2>"
        body += lineChart(
            [
                Series(name: "train", points: trainPoints),
                Series(name: "valid", points: validPoints, dashed: true, markers: true),
            ],
            xLabel: "epoch", yLabel: "loss (weighted sum of heads)")

        // Validation metrics per epoch, per head.
        let heads = Array(Set(history.flatMap { ($0.valid ?? [:]).keys })).sorted()
        if !heads.isEmpty {
            var series = [Series]()
            for h in heads {
                for key in ["accuracy", "f1"] {
                    let pts = history.compactMap { r in r.valid?[h]?[key].map { (x: Double(r.epoch), y: $0) } }
                    if !pts.isEmpty {
                        series.append(Series(name: "\(h) \(key)", points: pts, dashed: key == "f1", markers: true))
                    }
                }
            }
            body += "<h2>Validation</h2>"
            body += lineChart(series, xLabel: "epoch", yLabel: "value", yRange: 0...1)
        }

        // Epoch table.
        body +=
            "<h2>Epochs</h2><table><tr><th>epoch</th><th>lr</th><th>train loss</th><th>valid loss</th><th>\(escape(metric))</th><th>img/s</th><th>seconds</th><th>frozen</th><th>skipped</th></tr>"
        for r in history {
            body +=
                "<tr><td>\(r.epoch)\(r.bestEpoch == r.epoch && r.metricValue != nil ? " ★" : "")</td><td>\(String(format: "%.2e", r.learningRate))</td><td>\(fmt(r.trainLoss))</td><td>\(r.validLoss.map { fmt($0) } ?? "")</td><td>\(r.metricValue.map { fmt($0) } ?? "")</td><td>\(fmt(r.imagesPerSecond, 0))</td><td>\(fmt(r.seconds, 1))</td><td>\(escape(r.frozen.joined(separator: ", ")))</td><td>\(r.skipped)</td></tr>"
        }
        body += "</table>"

        if let final {
            body += "<h2>Final evaluation\(split.map { " (\(escape($0)) split)" } ?? "")</h2>"
            body +=
                "<p>\(final.paths.count) images · loss \(fmt(final.loss))\(final.skipped.isEmpty ? "" : " · \(final.skipped.count) skipped")</p>"
            for (k, r) in final.reports.enumerated() {
                let e = final.evaluators[k]
                let names = e.info.classNames.count == e.classes ? e.info.classNames : (0..<e.classes).map(String.init)
                body += "<h3>Head \(escape(r.head)) (\(r.kind.rawValue), \(r.perClass.count) classes)</h3>"
                body += "<p>\(r.kind == .sigmoid ? "accuracy_multi" : "accuracy") <b>\(fmt(r.accuracy))</b>"
                body += " · macro P/R/F1 \(fmt(r.macro.precision))/\(fmt(r.macro.recall))/\(fmt(r.macro.f1))"
                body += " · micro F1 \(fmt(r.micro.f1))"
                if let t = r.threshold { body += " · threshold \(fmt(t, 2))" }
                if let t = thresholds[r.head], t.count > 1 { body += " (per class)" }
                if let bt = r.bestThreshold, let ba = r.bestAccuracy {
                    body +=
                        " · best threshold \(fmt(bt, 2)) (\(r.kind == .sigmoid ? "accuracy_multi" : "accuracy") \(fmt(ba)))"
                }
                body += "</p><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
                for c in r.perClass {
                    body +=
                        "<tr><td>\(escape(c.name))</td><td>\(fmt(c.precision))</td><td>\(fmt(c.recall))</td><td>\(fmt(c.f1))</td><td>\(c.support)</td></tr>"
                }
                body += "</table><div class=\"row\">"
                if r.kind == .softmax {
                    body += confusionMatrix(
                        r.confusion, rowLabels: names, columnLabels: names,
                        title: "confusion matrix (normalised by row)")
                } else {
                    // One 2x2 matrix per class, at most 20.
                    for c in 0..<min(names.count, 20) {
                        body += confusionMatrix(
                            [r.confusion[2 * c], r.confusion[2 * c + 1]], rowLabels: ["not \(names[c])", names[c]],
                            columnLabels: ["no", "yes"], title: names[c])
                    }
                }
                body += "</div>"
                if !r.sweep.isEmpty {
                    let acc = Series(
                        name: r.kind == .sigmoid ? "accuracy_multi" : "accuracy",
                        points: r.sweep.map { ($0.threshold, $0.accuracy) })
                    let f1 = Series(name: "F1", points: r.sweep.map { ($0.threshold, $0.f1) }, dashed: true)
                    var marks = [(x: Double, label: String)]()
                    if let bt = r.bestThreshold { marks.append((bt, "best \(fmt(bt, 2))")) }
                    body +=
                        "<h4>Threshold sweep</h4>"
                        + lineChart([acc, f1], xLabel: "threshold", yLabel: "value", yRange: 0...1, marks: marks)
                }
            }
        }
        if let recipe { body += "<h2>Recipe</h2><pre>\(escape(recipe))</pre>" }
        let style = """
            body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
            h3{font-size:15px}table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
            th{background:#f4f4f4}td:first-child{text-align:left}pre{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto}
            .row{display:flex;flex-wrap:wrap;gap:12px}.note{color:#777}
            """
        return
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(escape(title)) · Kiln training report</title><style>\(style)</style></head><body>\(body)</body></html>\n"
    }
}
