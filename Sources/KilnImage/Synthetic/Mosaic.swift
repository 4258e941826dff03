import KilnTensor

/// A real multi-label data set from a single-label one: 2x2 mosaics of four images whose
/// labels are the union of the four tiles' classes (e.g. Fashion-MNIST: 56x56 grey mosaics,
/// "coat sneaker trouser"), in fastai's `fname,labels,is_valid` CSV format.
public enum Mosaic {
    /// Label spellings usable in a space-separated list: lower case, runs of anything other
    /// than letters and digits turned into `_` (`T-shirt/top` → `t_shirt_top`).
    public static func slug(_ name: String) -> String {
        var out = ""
        var pendingUnderscore = false
        for ch in name.lowercased() {
            if ch.isLetter || ch.isNumber {
                if pendingUnderscore && !out.isEmpty { out.append("_") }
                pendingUnderscore = false
                out.append(ch)
            } else {
                pendingUnderscore = true
            }
        }
        return out
    }

    /// Tiles four equal-size images as a 2x2 mosaic: `[top-left, top-right, bottom-left, bottom-right]`.
    public static func compose(_ tiles: [Image]) -> Image {
        precondition(tiles.count == 4, "a 2x2 mosaic has 4 tiles")
        let w = tiles[0].width, h = tiles[0].height, c = tiles[0].channels
        precondition(tiles.allSatisfy { $0.width == w && $0.height == h && $0.channels == c }, "tiles must share one size")
        var out = [UInt8](repeating: 0, count: 4 * w * h * c)
        for (k, t) in tiles.enumerated() {
            let ox = (k % 2) * w, oy = (k / 2) * h
            for y in 0..<h {
                for x in 0..<(w * c) { out[((oy + y) * 2 * w) * c + ox * c + x] = t.pixels[(y * w) * c + x] }
            }
        }
        return Image(width: 2 * w, height: 2 * h, channels: c, pixels: out)
    }

    /// Writes `trainCount` mosaics from `train` and `validCount` from `valid` (each tile drawn
    /// uniformly from its split, seeded) as PNGs under `dir/images/`, and `dir/labels.csv` with
    /// `fname,labels,is_valid`. Labels are the slugs of the first head's class names.
    public static func write(
        to dir: String, train: Dataset, valid: Dataset, trainCount: Int, validCount: Int, seed: UInt64 = 0,
        progress: ((Int) -> Void)? = nil
    ) throws(ImageError) -> [String] {
        guard trainCount > 0, validCount > 0 else { throw ImageError(dir, "need at least one training and one validation mosaic") }
        try makeDirectories(dir + "/images")
        let names = train.heads[0].classNames.map(slug)
        var lines = ["fname,labels,is_valid"]
        var rng = SeededRandom(seed: seed)
        var written = 0
        for (split, data, n) in [("train", train, trainCount), ("valid", valid, validCount)] {
            for i in 0..<n {
                var tiles = [Image]()
                var classes = Set<Int>()
                for _ in 0..<4 {
                    let k = Int(rng.next() % UInt64(data.count))
                    let tile: Image
                    do {
                        tile = try data.image(at: k, options: DecodeOptions(channels: .native))
                    } catch {
                        throw ImageError(error.file, error.description)
                    }
                    tiles.append(tile)
                    classes.insert(data.samples[k].targets[0].index ?? 0)
                }
                let name = "images/\(split)_\(zeroPadded(i, 6)).png"
                try compose(tiles).write(to: dir + "/" + name)
                lines.append("\(name),\(classes.sorted().map { names[$0] }.joined(separator: " ")),\(split == "valid" ? "True" : "False")")
                written += 1
                progress?(written)
            }
        }
        try writeText(lines.joined(separator: "\n") + "\n", to: dir + "/labels.csv")
        return names
    }
}

extension Dataset {
    /// Writes every sample's image as a PNG under `dir/<split>/NNNNN.png` and a CSV `dir/<split>.csv`
    /// of `<split>/NNNNN.png,class_id` rows (the first head), e.g. to turn IDX data into files.
    /// `limit` keeps the first samples only.
    public func exportImages(to dir: String, split: String, limit: Int? = nil, progress: ((Int) -> Void)? = nil) throws(ImageError) -> Int {
        try makeDirectories(dir + "/" + split)
        let n = min(count, limit ?? count)
        var lines = [String]()
        lines.reserveCapacity(n)
        for i in 0..<n {
            let image: Image
            do {
                image = try self.image(at: i, options: DecodeOptions(channels: .native))
            } catch {
                throw ImageError(error.file, error.description)
            }
            let name = "\(split)/\(zeroPadded(i, 5)).png"
            try image.write(to: dir + "/" + name)
            lines.append("\(name),\(samples[i].targets[0].index ?? 0)")
            progress?(i + 1)
        }
        try writeText(lines.joined(separator: "\n") + "\n", to: "\(dir)/\(split).csv")
        return n
    }
}
