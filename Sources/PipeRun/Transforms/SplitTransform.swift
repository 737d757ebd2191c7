/// Splits the first column (a log line) into columns: `split:combined` and `split:common`
/// for web-server access logs, or `split:DELIM:COLS` with COLS a count or a list of names (the
/// last column takes the rest of the line; missing pieces are empty). DELIM may be `space` or
/// `tab`.
public final class SplitTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "split", usage: "split:combined|common|DELIM:COLS", summary: "split a log line into columns"
    ) { argument in try SplitTransform(argument) }

    enum Mode { case delimiter(UInt8), accessLog(combined: Bool) }

    static let combinedNames = ["ip", "ident", "user", "time", "request", "status", "bytes", "referer", "agent"]

    let mode: Mode
    let names: [String]
    private var fields: [Field] = []

    public init(_ argument: String) throws {
        switch argument {
        case "combined":
            mode = .accessLog(combined: true)
            names = Self.combinedNames
        case "common":
            mode = .accessLog(combined: false)
            names = Array(Self.combinedNames.prefix(7))
        default:
            guard let colon = argument.lastIndex(of: ":"), colon > argument.startIndex else {
                throw PipeRunError(.usage, "split: expected combined, common or DELIM:COLS (a count or names), got '\(argument)'")
            }
            let delimiter = String(argument[..<colon])
            let cols = String(argument[argument.index(after: colon)...])
            let byte: UInt8
            switch delimiter {
            case "space": byte = 32
            case "tab", "\\t": byte = 9
            default:
                guard delimiter.utf8.count == 1 else {
                    throw PipeRunError(.usage, "split: the delimiter must be one byte (or space, tab), got '\(delimiter)'")
                }
                byte = delimiter.utf8.first!
            }
            mode = .delimiter(byte)
            if let n = Int(cols) {
                guard n >= 1 && n <= 10_000 else { throw PipeRunError(.usage, "split: the column count must be 1 to 10000") }
                names = (1...n).map(String.init)
            } else {
                names = try columnList(cols, for: "split")
            }
        }
        fields.reserveCapacity(names.count)
    }

    /// A row's own line makes its columns.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        Columns(names)
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let line = row[0].bytes
        fields.removeAll(keepingCapacity: true)
        switch mode {
        case .delimiter(let d):
            var start = 0
            var i = 0
            while fields.count < names.count - 1 && i < line.count {
                if line[i] == d {
                    fields.append(Field(UnsafeRawBufferPointer(rebasing: line[start..<i])))
                    start = i + 1
                }
                i += 1
            }
            fields.append(Field(UnsafeRawBufferPointer(rebasing: line[min(start, line.count)...])))
            while fields.count < names.count { fields.append(.empty) }
        case .accessLog:
            try splitAccessLog(line)
        }
        try fields.withUnsafeBufferPointer { try emit(Row(fields: $0, line: row.line, offset: row.offset, raw: row.raw)) }
    }

    /// `%h %l %u [%t] "%r" %>s %b` and, for combined, ` "%{Referer}i" "%{User-agent}i"`.
    private func splitAccessLog(_ line: UnsafeRawBufferPointer) throws {
        var i = 0
        let n = line.count
        func token(_ open: UInt8?, _ close: UInt8) throws {
            while i < n && line[i] == 32 { i += 1 }
            if let open {
                guard i < n && line[i] == open else { throw malformed() }
                i += 1
                let start = i
                while i < n && line[i] != close {
                    if close == 34 && line[i] == 92 && i + 1 < n { i += 1 }  // \" inside quotes
                    i += 1
                }
                guard i < n else { throw malformed() }
                fields.append(Field(UnsafeRawBufferPointer(rebasing: line[start..<i])))
                i += 1
            } else {
                let start = i
                while i < n && line[i] != close { i += 1 }
                guard i > start else { throw malformed() }
                fields.append(Field(UnsafeRawBufferPointer(rebasing: line[start..<i])))
            }
        }
        for _ in 0..<3 { try token(nil, 32) }
        try token(91, 93)  // [time]
        try token(34, 34)  // "request"
        try token(nil, 32)
        try token(nil, 32)
        if names.count == 9 {
            try token(34, 34)
            try token(34, 34)
        }
    }

    private func malformed() -> PipeRunError {
        PipeRunError(.dataError, "split: not a \(names.count == 9 ? "combined" : "common") access-log line")
    }
}
