/// A record that could not be parsed, or whose field count is wrong. (A class: the reader's
/// ``RecordReader/Next`` is then one word, and returning `.record` costs nothing.)
package final class MalformedRecord: Sendable {
    /// Why the record is malformed.
    package let reason: String
    /// The byte offset where the record starts.
    package let offset: Int64
    /// The byte offset of the offending byte.
    package let errorOffset: Int64
    /// The 1-based line where the record starts.
    package let line: Int64
    /// The record's raw bytes, up to its end (or the next line feed when its end is unknown).
    package let raw: [UInt8]

    package init(reason: String, offset: Int64, errorOffset: Int64, line: Int64, raw: [UInt8]) {
        self.reason = reason
        self.offset = offset
        self.errorOffset = errorOffset
        self.line = line
        self.raw = raw
    }

    /// A short, printable excerpt of the record.
    package var excerpt: String {
        let limit = 60
        var text = String(decoding: raw.prefix(limit), as: UTF8.self)
        text = text.replacingNewlines()
        return raw.count > limit ? text + "..." : text
    }
}

extension String {
    /// The string with line ends, tabs and other control characters written as escapes, so
    /// that a record's excerpt stays on the one line of a message.
    func replacingNewlines() -> String {
        var out = ""
        for ch in self {
            switch ch {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            case "\t": out += "\\t"
            default:
                if let v = ch.asciiValue, v < 0x20 || v == 0x7F {
                    out += "\\x" + (v < 16 ? "0" : "") + String(v, radix: 16)
                } else {
                    out.append(ch)
                }
            }
        }
        return out
    }
}
