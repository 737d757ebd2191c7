/// How input bytes are split into rows and fields.
public enum RecordFormat: String, Sendable, Codable, CaseIterable {
    /// RFC 4180 comma-separated values: quoted fields, `""` escapes, LF or CRLF record ends.
    case csv
    /// Tab-separated values with the same quoting rules as ``csv`` (Python's `excel-tab`).
    case tsv
    /// Every line is one row with one field, named `1`; a trailing CR is dropped. For logs.
    case lines

    /// The field delimiter this format uses unless one is given.
    public var defaultDelimiter: UInt8 {
        switch self {
        case .csv: UInt8(ascii: ",")
        case .tsv: UInt8(ascii: "\t")
        case .lines: UInt8(ascii: "\n")
        }
    }
}

extension RecordFormat {
    /// The syntax that parses this format's records. (``RecordReader/next()`` has the same
    /// table as a switch, which runs the record loop specialised on the type.)
    var syntax: any RecordSyntax.Type {
        switch self {
        case .csv, .tsv: CSVRecordFormat.self
        case .lines: LineRecordFormat.self
        }
    }
}
