import CScan

/// ``RecordFormat/lines``: every line is one record with one field, its bytes as they are but
/// for a CR before the LF. Every line is a record, a blank one too; a lone CR is part of its
/// line.
enum LineRecordFormat: RecordSyntax {
    static var usesSpecialBytes: Bool { false }
    static var isParsedAhead: Bool { false }
    static var loneCREndsLine: Bool { false }

    @inline(__always)
    static func parseRecord(at start: Int, in input: inout RecordInput, into fields: inout FieldList) -> ParseOutcome {
        let b = input.bytes
        if let q = memchr(b + start, 10, input.end - start) {
            let lf = q.assumingMemoryBound(to: UInt8.self) - b
            return oneField(b, from: start, to: lf, recordEnd: lf + 1, newlines: 1, into: &fields)
        }
        if !input.isAtEnd { return .needMore(insideQuotes: false) }
        return oneField(b, from: start, to: input.end, recordEnd: input.end, newlines: 0, into: &fields)
    }

    /// The line `b[from..<to]` (its LF excluded), without a CR at its end, as the one field of
    /// a record ending at `recordEnd`. (A line with a CR is not written back as it was.)
    @inline(__always)
    private static func oneField(_ b: UnsafeMutablePointer<UInt8>, from start: Int, to lineEnd: Int, recordEnd: Int,
                                 newlines: Int64, into fields: inout FieldList) -> ParseOutcome {
        var fieldEnd = lineEnd
        var verbatim = true
        if fieldEnd > start && b[fieldEnd - 1] == 13 {
            fieldEnd -= 1
            verbatim = false
        }
        fields.append(b + start, count: fieldEnd - start)
        return .record(end: recordEnd, newlines: newlines, verbatim: verbatim)
    }

    /// Every line is a good record.
    @inline(__always)
    static func check(_ record: UnsafeRawBufferPointer, fieldCount: Int, expectedFields: Int?) -> RecordCheck {
        .accept
    }
}
