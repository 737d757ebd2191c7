/// Finds where the first record after a nominal split point starts, from a window of the bytes
/// there, without reading what comes before: a guess for CSV and TSV, which the driver proves
/// or refutes later (``RangedProgress``).
///
/// For CSV the state at the split point is unknown: inside a quoted field or not. Both
/// hypotheses are followed through the window, as in "Speculative Distributed CSV Data
/// Parsing" (Ge et al., SIGMOD 2019); strict CSV rules one out as soon as it meets a quote
/// that cannot be where it is (a quote inside an unquoted field, or a closing quote followed
/// by something other than a delimiter or a line end). The survivor's first line end outside
/// quotes ends the record that holds the split point. When both survive (a window without
/// quotes), outside is the guess. For lines, the first line feed is the answer, exactly.
enum RecordStart {
    /// The guess: the window offset just after the line end that ends the record holding
    /// `window[0]`, or nil when the window does not show one (or no hypothesis survives).
    static func guess(in window: UnsafeRawBufferPointer, format: RecordFormat, delimiter: UInt8,
                      atEnd: Bool) -> Int? {
        guard format.syntax.usesSpecialBytes else {
            guard let i = window.firstIndex(of: 10) else { return nil }
            return i + 1
        }
        var outside = Hypothesis(inQuotes: false)
        var inside = Hypothesis(inQuotes: true)
        var i = 0
        let n = window.count
        while i < n {
            if !outside.dead { outside.step(window, &i, delimiter: delimiter, atEnd: atEnd) }
            if !inside.dead { inside.step(window, &i, delimiter: delimiter, atEnd: atEnd) }
            i += 1
            if outside.dead && inside.dead { return nil }
            if outside.dead, let start = inside.recordStart { return start }
            if inside.dead, let start = outside.recordStart { return start }
        }
        if !outside.dead, let start = outside.recordStart { return start }
        if outside.dead, !inside.dead, let start = inside.recordStart { return start }
        return nil
    }

    /// One hypothesis about the parser's state, followed byte by byte.
    private struct Hypothesis {
        var inQuotes: Bool
        /// Whether the next byte starts a field (assumed at the split point: lenient).
        var atFieldStart = true
        /// Set when the last byte was a quote inside quotes: it closes the field or doubles.
        var quotePending = false
        var dead = false
        var recordStart: Int?

        init(inQuotes: Bool) {
            self.inQuotes = inQuotes
        }

        mutating func step(_ w: UnsafeRawBufferPointer, _ index: inout Int, delimiter: UInt8, atEnd: Bool) {
            let c = w[index]
            if quotePending {
                quotePending = false
                if c == 34 { return }  // a doubled quote: still inside
                // The quote closed the field: a delimiter or a line end must follow.
                inQuotes = false
                guard c == delimiter || c == 10 || c == 13 else {
                    dead = true
                    return
                }
            } else if inQuotes {
                if c == 34 { quotePending = true }
                return
            }
            switch c {
            case 34:
                if atFieldStart {
                    inQuotes = true
                    atFieldStart = false
                } else {
                    dead = true
                }
            case 10:
                if recordStart == nil { recordStart = index + 1 }
                atFieldStart = true
            case 13:
                atFieldStart = true
            default:
                atFieldStart = c == delimiter
            }
        }
    }
}
