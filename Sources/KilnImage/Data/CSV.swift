import KilnTensor

/// A problem with a dataset: the file, the line when there is one (1-based), and what is wrong.
public struct DataError: Error, CustomStringConvertible, Sendable, Hashable {
    public var file: String
    public var line: Int?
    public var problem: String
    public init(_ file: String, line: Int? = nil, _ problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }
    /// `data/train.csv:12: images/a.jpg: no such file`
    public var description: String { line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)" }
}

/// A small CSV reader: RFC 4180 quoting (`"a,b"`, `""` for a quote), `\n` or `\r\n` line ends,
/// a UTF-8 byte-order mark ignored, blank lines skipped. Each row keeps its 1-based line number.
public struct CSVTable: Sendable {
    public struct Row: Sendable, Hashable {
        public var line: Int
        public var fields: [String]
    }

    public var path: String
    public var rows: [Row]
    public var delimiter: Character

    /// The largest CSV file read: 1 GiB.
    public static let maxBytes = 1 << 30

    /// Reads and splits a file. `delimiter` nil detects it from the first line: `|` when that
    /// line has a `|` and no `,`, then `;` likewise, else `,`.
    public static func read(_ path: String, delimiter: Character? = nil) throws(DataError) -> CSVTable {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.read(path, limit: maxBytes)
        } catch {
            throw DataError(path, error.problem)
        }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path, delimiter: delimiter)
    }

    public static func parse(_ text: String, path: String, delimiter: Character? = nil) throws(DataError) -> CSVTable {
        var body = Substring(text)
        if body.first == "\u{FEFF}" { body = body.dropFirst() }
        let firstLine = body.prefix { $0 != "\n" && $0 != "\r\n" }
        let d: Character
        if let delimiter {
            d = delimiter
        } else if firstLine.contains("|") && !firstLine.contains(",") {
            d = "|"
        } else if firstLine.contains(";") && !firstLine.contains(",") {
            d = ";"
        } else {
            d = ","
        }
        var rows = [Row]()
        var fields = [String]()
        var field = ""
        var quoted = false
        var line = 1
        var rowLine = 1
        var fieldStarted = false
        var chars = body.makeIterator()
        var pending: Character? = nil
        func endRow() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].trimmingSpaces().isEmpty) {
                rows.append(Row(line: rowLine, fields: fields.map { $0.trimmingSpaces() }))
            }
            fields = []
            field = ""
            fieldStarted = false
        }
        while let ch = pending ?? chars.next() {
            pending = nil
            if quoted {
                if ch == "\"" {
                    if let next = chars.next() {
                        if next == "\"" {
                            field.append("\"")
                        } else {
                            quoted = false
                            pending = next
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    if ch == "\n" || ch == "\r\n" { line += 1 }
                    field.append(ch)
                }
                continue
            }
            switch ch {
            case "\"" where !fieldStarted || field.trimmingSpaces().isEmpty:
                quoted = true
                field = ""
                fieldStarted = true
            case d:
                fields.append(field)
                field = ""
                fieldStarted = false
            case "\n", "\r\n":
                endRow()
                line += 1
                rowLine = line
            default:
                field.append(ch)
                if ch != " " { fieldStarted = true }
            }
        }
        if quoted { throw DataError(path, line: rowLine, "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return CSVTable(path: path, rows: rows, delimiter: d)
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace { end = scalars.index(before: end) }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }
}
