#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import KilnTensor

/// A synthetic data set for the document / screen / not-a-document use case, so that the
/// 256x256 recipes train anywhere without downloading anything.
///
/// - **document** (class 0): a paper page (margins, a heading, paragraphs of text-line
///   strokes, sometimes a table or a figure) lying on a desk at a random angle, scale and
///   slant, with a shadow, uneven light and sensor noise;
/// - **not a document** (class 1): cans (shaded cylinders with labels), packets (boxes with
///   logos and a little text: hard negatives) and posters (big shapes and headline strokes on
///   a wall);
/// - **screen** (class 2): the same kind of page shown on a monitor or phone: a dark bezel, a
///   backlit bluish screen with a viewer background, moiré from the pixel grid, and glare.
///
/// Every image is a pure function of `(seed, index)`: the same call writes the same files.
public enum SyntheticDocuments {
    public enum Kind: Int, Sendable, CaseIterable {
        case document = 0, notDocument = 1, screen = 2
    }

    /// Class names in `class_id` order.
    public static let classNames = ["document", "not_document", "screen"]

    /// Renders one `size`x`size` scene of `kind`, from `seed`.
    public static func render(_ kind: Kind, size: Int, seed: UInt64) -> Image {
        var rng = SeededRandom(seed: seed)
        var scene: Canvas
        switch kind {
        case .document: scene = document(size: size, rng: &rng)
        case .notDocument: scene = notDocument(size: size, rng: &rng)
        case .screen: scene = screen(size: size, rng: &rng)
        }
        // Camera: uneven light, vignetting, noise.
        let lx = rng.uniform(0, Float(size)), ly = rng.uniform(0, Float(size)), strength = rng.uniform(0.05, 0.25)
        let s = Float(size)
        scene.scale { x, y in
            let dx = (x - lx) / s, dy = (y - ly) / s
            return 1 + strength * (0.5 - (dx * dx + dy * dy))
        }
        scene.noise(rng.uniform(0.005, 0.03), rng: &rng)
        return scene.image
    }

    // MARK: - Scenes

    static func randomColor(_ rng: inout SeededRandom, lo: Float = 0, hi: Float = 1) -> Canvas.RGB {
        (rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi))
    }

    /// A desk, table or floor: a base colour with a gradient and grain.
    static func background(size: Int, rng: inout SeededRandom, dark: Bool = false) -> Canvas {
        let base = dark ? randomColor(&rng, lo: 0.05, hi: 0.35) : randomColor(&rng, lo: 0.2, hi: 0.75)
        var c = Canvas(width: size, height: size, color: base)
        let gx = rng.uniform(-0.15, 0.15), gy = rng.uniform(-0.15, 0.15)
        let s = Float(size)
        c.add { x, y in gx * (x / s - 0.5) + gy * (y / s - 0.5) }
        // Wood-like grain or fabric stripes.
        let freq = rng.uniform(0.02, 0.2), amp = rng.uniform(0, 0.05), phase = rng.uniform(0, 6.28)
        let vertical = rng.uniform(0, 1) < 0.5
        c.add { x, y in amp * sin(freq * (vertical ? x : y) + phase + 0.3 * sin(0.05 * (vertical ? y : x))) }
        return c
    }

    /// A page: paper, heading, text lines, maybe a table or a figure; `(width, height)` pixels.
    static func page(width: Int, height: Int, rng: inout SeededRandom) -> Canvas {
        let paper: Canvas.RGB = (rng.uniform(0.88, 1), rng.uniform(0.87, 0.99), rng.uniform(0.82, 0.97))
        var p = Canvas(width: width, height: height, color: paper)
        let w = Float(width), h = Float(height)
        let margin = w * rng.uniform(0.07, 0.14)
        let ink: Canvas.RGB = rng.uniform(0, 1) < 0.8 ? (0.08, 0.08, 0.1) : (0.1, 0.12, 0.35)
        let lineHeight = h * rng.uniform(0.022, 0.045)
        var y = margin
        // Heading.
        if rng.uniform(0, 1) < 0.8 {
            let hw = (w - 2 * margin) * rng.uniform(0.3, 0.7)
            let color: Canvas.RGB = rng.uniform(0, 1) < 0.3 ? randomColor(&rng, lo: 0, hi: 0.6) : ink
            p.fillRect(margin, y, margin + hw, y + lineHeight * 0.8, color)
            y += lineHeight * 2
        }
        let twoColumns = rng.uniform(0, 1) < 0.25
        let columnWidth = twoColumns ? (w - 2 * margin) * 0.47 : w - 2 * margin
        let columns = twoColumns ? [margin, margin + (w - 2 * margin) * 0.53] : [margin]
        let startY = y
        for x0 in columns {
            y = startY
            while y + lineHeight < h - margin {
                let r = rng.uniform(0, 1)
                if r < 0.06 && !twoColumns {
                    // A table: a grid with short entries.
                    let rows = 3 + Int(rng.next() % 4), cols = 2 + Int(rng.next() % 3)
                    let th = Float(rows) * lineHeight * 1.3
                    guard y + th < h - margin else { break }
                    for i in 0...rows { p.fillRect(x0, y + Float(i) * th / Float(rows), x0 + columnWidth, y + Float(i) * th / Float(rows) + 1, ink, alpha: 0.7) }
                    for j in 0...cols { p.fillRect(x0 + Float(j) * columnWidth / Float(cols), y, x0 + Float(j) * columnWidth / Float(cols) + 1, y + th, ink, alpha: 0.7) }
                    for i in 0..<rows {
                        for j in 0..<cols {
                            let cw = columnWidth / Float(cols)
                            let ex = x0 + Float(j) * cw + cw * 0.15
                            let ey = y + (Float(i) + 0.35) * th / Float(rows)
                            p.fillRect(ex, ey, ex + cw * rng.uniform(0.2, 0.7), ey + lineHeight * 0.4, ink)
                        }
                    }
                    y += th + lineHeight
                } else if r < 0.1 && !twoColumns {
                    // A figure: a tinted box with a simple chart.
                    let fh = lineHeight * Float(4 + Int(rng.next() % 5))
                    guard y + fh < h - margin else { break }
                    let fw = columnWidth * rng.uniform(0.4, 0.9)
                    p.fillRect(x0, y, x0 + fw, y + fh, randomColor(&rng, lo: 0.5, hi: 0.95))
                    var px = x0 + fw * 0.1
                    var py = y + fh * rng.uniform(0.3, 0.8)
                    for _ in 0..<5 {
                        let nx = px + fw * 0.16, ny = y + fh * rng.uniform(0.2, 0.85)
                        p.line(px, py, nx, ny, width: max(1, lineHeight * 0.15), randomColor(&rng, lo: 0, hi: 0.6))
                        px = nx
                        py = ny
                    }
                    y += fh + lineHeight
                } else if r < 0.2 {
                    y += lineHeight  // paragraph break
                } else {
                    // A text line: words of random lengths, ragged right end.
                    var x = x0 + (rng.uniform(0, 1) < 0.15 ? lineHeight : 0)
                    let end = x0 + columnWidth * (rng.uniform(0, 1) < 0.2 ? rng.uniform(0.3, 0.9) : 1)
                    let strokeH = lineHeight * rng.uniform(0.35, 0.5)
                    while x < end {
                        let word = lineHeight * rng.uniform(0.6, 3.2)
                        let x1 = min(x + word, end)
                        if x1 - x > lineHeight * 0.3 {
                            p.fillRect(x, y, x1, y + strokeH, ink, alpha: rng.uniform(0.7, 1))
                        }
                        x = x1 + lineHeight * rng.uniform(0.25, 0.45)
                    }
                    y += lineHeight
                }
            }
        }
        // Folds and smudges.
        if rng.uniform(0, 1) < 0.3 {
            let fy = rng.uniform(0.3, 0.7) * h
            p.add { _, yy in -0.06 * exp(-abs(yy - fy) / 2) }
        }
        return p
    }

    static func document(size: Int, rng: inout SeededRandom) -> Canvas {
        var scene = background(size: size, rng: &rng)
        let s = Float(size)
        let aspect = rng.uniform(0, 1) < 0.8 ? Float(1.414) : rng.uniform(0.7, 1.5)  // A4 mostly, receipts, letters
        let pw = Int(s * 0.7), ph = max(8, Int(Float(pw) * aspect))
        let pg = page(width: pw, height: ph, rng: &rng)
        let cover = rng.uniform(0.45, 1.05)
        let scale = cover * s / max(Float(pw), Float(ph))
        let angle = rng.uniform(-0.45, 0.45) + (rng.uniform(0, 1) < 0.15 ? Float.pi / 2 : 0)
        let center = (s * rng.uniform(0.35, 0.65), s * rng.uniform(0.35, 0.65))
        let shear = rng.uniform(-0.15, 0.15)
        let squash = rng.uniform(0.8, 1)  // seen from an angle
        // Shadow: a dark, offset, translucent copy.
        let shadow = Canvas(width: pw, height: ph, color: (0, 0, 0))
        let offset = s * rng.uniform(0.005, 0.025)
        scene.composite(
            shadow, inverse: placement(source: (Float(pw), Float(ph)), center: (center.0 + offset, center.1 + offset), scale: (scale, scale * squash), angle: angle, shear: shear),
            alpha: rng.uniform(0.2, 0.45))
        scene.composite(pg, inverse: placement(source: (Float(pw), Float(ph)), center: center, scale: (scale, scale * squash), angle: angle, shear: shear))
        // Sometimes a second page or a pen beside it.
        if rng.uniform(0, 1) < 0.25 {
            let x = rng.uniform(0, s), y = rng.uniform(0, s)
            scene.line(x, y, x + rng.uniform(-0.3, 0.3) * s, y + rng.uniform(-0.3, 0.3) * s, width: s * 0.02, randomColor(&rng, lo: 0, hi: 0.8))
        }
        return scene
    }

    static func screen(size: Int, rng: inout SeededRandom) -> Canvas {
        var scene = background(size: size, rng: &rng, dark: rng.uniform(0, 1) < 0.6)
        let s = Float(size)
        let phone = rng.uniform(0, 1) < 0.35
        // The device: bezel around a screen.
        let dw = phone ? Int(s * 0.45) : Int(s * 0.9)
        let dh = phone ? Int(s * 0.9) : Int(Float(dw) * rng.uniform(0.56, 0.75))
        let bezelColor: Canvas.RGB = rng.uniform(0, 1) < 0.8 ? randomColor(&rng, lo: 0.02, hi: 0.12) : randomColor(&rng, lo: 0.6, hi: 0.85)
        var device = Canvas(width: dw, height: dh, color: bezelColor)
        let bezel = Float(min(dw, dh)) * rng.uniform(0.03, 0.08)
        let sx0 = Int(bezel), sy0 = Int(bezel * (phone ? 2 : 1)), sx1 = dw - Int(bezel), sy1 = dh - Int(bezel * (phone ? 2 : 1))
        let screenW = max(8, sx1 - sx0), screenH = max(8, sy1 - sy0)
        // Screen content: a viewer background with a page on it.
        let viewer: Canvas.RGB = rng.uniform(0, 1) < 0.5 ? randomColor(&rng, lo: 0.15, hi: 0.35) : (0.9, 0.9, 0.92)
        var content = Canvas(width: screenW, height: screenH, color: viewer)
        let ph = phone ? Int(Float(screenH) * 1.2) : Int(Float(screenH) * rng.uniform(0.9, 1.6))
        let pw = max(8, Int(Float(ph) / 1.414))
        let pg = page(width: pw, height: ph, rng: &rng)
        let fit = phone ? Float(screenW) * 0.95 / Float(pw) : Float(screenH) * rng.uniform(0.9, 1.3) / Float(ph)
        content.composite(
            pg, inverse: placement(source: (Float(pw), Float(ph)), center: (Float(screenW) / 2, Float(screenH) * rng.uniform(0.4, 0.6)), scale: (fit, fit), angle: 0))
        // Backlight: lifted blacks and a blue tint; the subpixel grid and moiré.
        let tint: Canvas.RGB = (rng.uniform(0.85, 0.95), rng.uniform(0.9, 1), 1)
        for i in 0..<(screenW * screenH) {
            content.rgb[3 * i] = content.rgb[3 * i] * 0.85 * tint.0 + 0.06
            content.rgb[3 * i + 1] = content.rgb[3 * i + 1] * 0.85 * tint.1 + 0.06
            content.rgb[3 * i + 2] = content.rgb[3 * i + 2] * 0.85 * tint.2 + 0.09
        }
        let f1 = rng.uniform(0.35, 0.5), f2 = rng.uniform(-0.08, 0.08), f3 = rng.uniform(0.3, 0.5), f4 = rng.uniform(-0.1, 0.1)
        let amp = rng.uniform(0.03, 0.1)
        content.add { x, y in amp * sin(2 * Float.pi * (f1 * x + f2 * y)) * sin(2 * Float.pi * (f3 * y + f4 * x)) }
        if rng.uniform(0, 1) < 0.5 {
            content.add(tint: (1, 0.2, 0.2)) { x, _ in Int(x) % 3 == 0 ? -0.04 : 0 }
        }
        for y in 0..<screenH {
            for x in 0..<screenW {
                let c = content.get(x, y)
                device.blend(sx0 + x, sy0 + y, c, 1)
            }
        }
        if phone { device.fillEllipse(Float(dw) / 2, Float(dh) - bezel, bezel * 0.5, bezel * 0.5, (0.2, 0.2, 0.22)) }
        // Place the device, slightly turned and slanted.
        let cover = rng.uniform(0.6, 1.1)
        let scale = cover * s / max(Float(dw), Float(dh))
        let center = (s * rng.uniform(0.4, 0.6), s * rng.uniform(0.4, 0.6))
        let m = placement(
            source: (Float(dw), Float(dh)), center: center, scale: (scale, scale * rng.uniform(0.85, 1)), angle: rng.uniform(-0.3, 0.3),
            shear: rng.uniform(-0.2, 0.2))
        scene.composite(device, inverse: m)
        if !phone && rng.uniform(0, 1) < 0.6 {  // monitor stand
            scene.fillRect(center.0 - s * 0.05, center.1 + Float(dh) * scale / 2, center.0 + s * 0.05, s, bezelColor)
        }
        // Glare: a soft bright ellipse and sometimes a streak.
        let gx = rng.uniform(0.2, 0.8) * s, gy = rng.uniform(0.2, 0.8) * s, gr = rng.uniform(0.1, 0.35) * s
        let g = rng.uniform(0.1, 0.45)
        scene.add { x, y in
            let dx = (x - gx) / gr, dy = (y - gy) / (gr * 0.6)
            return g * exp(-(dx * dx + dy * dy))
        }
        if rng.uniform(0, 1) < 0.4 {
            let a = rng.uniform(0.05, 0.2), k = rng.uniform(-1, 1), b = rng.uniform(0, s)
            scene.add { x, y in a * exp(-abs(y - k * x - b) / (s * 0.03)) }
        }
        return scene
    }

    static func notDocument(size: Int, rng: inout SeededRandom) -> Canvas {
        var scene = background(size: size, rng: &rng)
        let s = Float(size)
        let choice = rng.next() % 3
        switch choice {
        case 0:  // cans
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let cw = s * rng.uniform(0.15, 0.35), ch = cw * rng.uniform(1.4, 2.2)
                let cx = rng.uniform(0.2, 0.8) * s, cy = rng.uniform(0.35, 0.7) * s
                let body = randomColor(&rng, lo: 0.1, hi: 1)
                let label = randomColor(&rng, lo: 0, hi: 1)
                var can = Canvas(width: Int(cw), height: Int(ch), color: body)
                let bandTop = ch * rng.uniform(0.2, 0.4), bandBottom = bandTop + ch * rng.uniform(0.15, 0.35)
                can.fillRect(0, bandTop, cw, bandBottom, label)
                can.fillEllipse(cw * rng.uniform(0.3, 0.7), (bandTop + bandBottom) / 2, cw * 0.25, (bandBottom - bandTop) * 0.4, randomColor(&rng))
                // Cylinder shading.
                let light = rng.uniform(0.25, 0.5)
                can.scale { x, _ in 0.45 + 0.6 * max(0, cos((x / cw - light) * Float.pi)) }
                can.fillRect(0, 0, cw, ch * 0.04, (0.7, 0.7, 0.72))
                let m = placement(source: (cw, ch), center: (cx, cy), scale: (1, 1), angle: rng.uniform(-0.2, 0.2))
                scene.composite(can, inverse: m)
                scene.fillEllipse(cx, cy - ch / 2, cw / 2, cw * 0.12, (0.75, 0.75, 0.78))
            }
        case 1:  // a packet: a box with two visible faces, a logo and a little text
            let bw = s * rng.uniform(0.35, 0.6), bh = s * rng.uniform(0.4, 0.7)
            let color = randomColor(&rng, lo: 0.2, hi: 1)
            var front = Canvas(width: Int(bw), height: Int(bh), color: color)
            front.fillEllipse(bw * 0.5, bh * 0.35, bw * 0.3, bh * 0.15, randomColor(&rng))
            front.fillRect(0, bh * 0.6, bw, bh * 0.72, randomColor(&rng))
            for i in 0..<Int(rng.next() % 4) {
                let y = bh * (0.78 + 0.05 * Float(i))
                front.fillRect(bw * 0.1, y, bw * rng.uniform(0.4, 0.9), y + bh * 0.02, (0.1, 0.1, 0.1))
            }
            var side = Canvas(width: Int(bw * 0.35), height: Int(bh), color: (color.0 * 0.6, color.1 * 0.6, color.2 * 0.6))
            side.fillRect(0, bh * 0.6, bw * 0.35, bh * 0.72, (0.3, 0.3, 0.3), alpha: 0.5)
            let cx = rng.uniform(0.35, 0.6) * s, cy = rng.uniform(0.4, 0.6) * s
            let angle = rng.uniform(-0.3, 0.3)
            scene.composite(front, inverse: placement(source: (bw, bh), center: (cx, cy), scale: (1, 1), angle: angle))
            scene.composite(
                side, inverse: placement(source: (bw * 0.35, bh), center: (cx + (bw * 0.5 + bw * 0.15) * cos(angle), cy + (bw * 0.65) * sin(angle)), scale: (1, 1), angle: angle, shear: -0.4))
        default:  // a poster on a wall
            let pw = s * rng.uniform(0.4, 0.75), ph = pw * rng.uniform(1.2, 1.5)
            var poster = Canvas(width: Int(pw), height: Int(ph), color: randomColor(&rng))
            let g = rng.uniform(-0.4, 0.4)
            poster.add { _, y in g * (y / ph - 0.5) }
            for _ in 0..<(2 + Int(rng.next() % 5)) {
                poster.fillEllipse(rng.uniform(0, pw), rng.uniform(0, ph), rng.uniform(0.1, 0.4) * pw, rng.uniform(0.1, 0.4) * pw, randomColor(&rng))
            }
            // A headline: a few very thick strokes.
            let hy = ph * rng.uniform(0.05, 0.25)
            var x = pw * 0.08
            for _ in 0..<(2 + Int(rng.next() % 4)) {
                let wlen = pw * rng.uniform(0.1, 0.3)
                poster.fillRect(x, hy, min(x + wlen, pw * 0.92), hy + ph * 0.07, randomColor(&rng, lo: 0, hi: 0.3))
                x += wlen + pw * 0.05
                if x > pw * 0.9 { break }
            }
            scene.composite(poster, inverse: placement(source: (pw, ph), center: (s * rng.uniform(0.4, 0.6), s * rng.uniform(0.4, 0.6)), scale: (1, 1), angle: rng.uniform(-0.15, 0.15), shear: rng.uniform(-0.15, 0.15)))
        }
        return scene
    }

    // MARK: - Writing a data set

    /// What ``write(to:count:size:seed:quality:progress:)`` produced.
    public struct Summary: Sendable, Hashable {
        /// Rows per split: train, val, test.
        public var counts: [String: Int]
        public var classCounts: [Int]
    }

    /// Writes `count` JPEGs under `dir/images/` and the splits `dir/train.csv`, `dir/val.csv`,
    /// `dir/test.csv` (80/10/10, rows `images/NNNNN.jpg,class_id`, no header; classes in
    /// turn so every split is balanced). Each file is written atomically.
    public static func write(
        to dir: String, count: Int, size: Int = 256, seed: UInt64 = 0, quality: Int = 90,
        progress: ((Int) -> Void)? = nil
    ) throws(ImageError) -> Summary {
        guard count >= 3 else { throw ImageError(dir, "need at least 3 images (one per class), got \(count)") }
        guard (16...4096).contains(size) else { throw ImageError(dir, "size \(size) is outside 16...4096") }
        try makeDirectories(dir + "/images")
        var rows: [String: [String]] = ["train": [], "val": [], "test": []]
        var classCounts = [0, 0, 0]
        for i in 0..<count {
            let kind = Kind(rawValue: i % 3)!
            let image = render(kind, size: size, seed: seed &* 1_000_003 &+ UInt64(i))
            let name = "images/" + zeroPadded(i, 5) + ".jpg"
            try image.write(to: dir + "/" + name, quality: quality)
            // Blocks of 30: 24 train, 3 val, 3 test (one of each class in val and test).
            let slot = i % 30
            let split = slot < 24 ? "train" : slot < 27 ? "val" : "test"
            rows[split]!.append("\(name),\(kind.rawValue)")
            classCounts[kind.rawValue] += 1
            progress?(i + 1)
        }
        // Small counts still give every split at least one row.
        for split in ["val", "test"] where rows[split]!.isEmpty {
            rows[split]!.append(rows["train"]!.removeLast())
        }
        for (split, lines) in rows {
            try writeText(lines.joined(separator: "\n") + "\n", to: "\(dir)/\(split).csv")
        }
        return Summary(counts: rows.mapValues(\.count), classCounts: classCounts)
    }
}

// MARK: - Small file helpers shared by the writers

/// `n` in decimal, left-padded with zeros to `width` digits.
func zeroPadded(_ n: Int, _ width: Int) -> String {
    let s = String(n)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(ImageError) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw ImageError(path, "cannot create the folder \(current): \(String(cString: strerror(errno)))")
        }
    }
}

/// Writes UTF-8 text atomically.
func writeText(_ text: String, to path: String) throws(ImageError) {
    do {
        try FileIO.writeAtomically(Array(text.utf8), to: path)
    } catch {
        throw ImageError(path, error.problem)
    }
}
