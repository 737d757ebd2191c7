/// RFC 4180 records, with the reader's delimiter: ``RecordFormat/csv`` and, with a tab,
/// ``RecordFormat/tsv``. Quoted fields, `""` escapes, LF, CRLF or lone CR line ends; a blank
/// line is no record (as in Python's csv module and most CSV tools).
enum CSVRecordFormat: RecordSyntax {
    static var usesSpecialBytes: Bool { true }
    static var isParsedAhead: Bool { true }
    static var loneCREndsLine: Bool { true }

    /// Every special byte is listed, so each list entry ends a field, is a quote, or ends the
    /// line: a field starts just after the previous entry, and it is quoted when its first byte
    /// is listed (a quote).
    ///
    /// (The hot loop of every CSV and TSV job, in one piece: it jumps from list entry to list
    /// entry and keeps its state in registers, the fields' count and storage too, in a local
    /// copy of the list. Inlined into the reader's loop, it would run out of registers.)
    @inline(never)
    static func parseRecord(at start: Int, in input: inout RecordInput, into list: inout FieldList) -> ParseOutcome {
        var fields = list
        defer { list = fields }
        let b = input.bytes
        let e = input.end
        let d = input.delimiter
        let ix = input.specials
        var k = input.nextSpecial
        defer { input.nextSpecial = k }
        var fieldStart = start
        var newlines: Int64 = 0
        var scratchUsed = 0
        var verbatim = true
        while true {
            var q = Int(ix[k])
            if q == e {
                // No special byte left: the record goes on after the buffer, or ends the input.
                if !input.isAtEnd { return .needMore(insideQuotes: false) }
                fields.append(b + fieldStart, count: e - fieldStart)
                return .record(end: e, newlines: newlines, verbatim: verbatim)
            }
            var c = b[q]
            if c == 34 {
                if q != fieldStart { return .malformed("a quote inside an unquoted field", at: q) }
                // A quoted field: jump from quote to quote.
                // Whether the field holds a delimiter, quote, CR or LF, so that a writer quotes
                // it too (else the record is not written back byte for byte).
                var mustBeQuoted = false
                let contentStart = q + 1
                var segment = contentStart
                var unescaped = false
                let scratchStart = scratchUsed
                k += 1
                while true {
                    // The next quote, counting line feeds on the way.
                    var qi = Int(ix[k])
                    while qi < e && b[qi] != 34 {
                        if b[qi] == 10 { newlines += 1 }
                        mustBeQuoted = true
                        k += 1
                        qi = Int(ix[k])
                    }
                    if qi == e {
                        if !input.isAtEnd { return .needMore(insideQuotes: true) }
                        return .malformed("unterminated quoted field", at: fieldStart)
                    }
                    if qi + 1 < e && b[qi + 1] == 34 {
                        // `""` is one quote: copy what came before it, with one quote, to scratch.
                        let n = qi + 1 - segment
                        (input.scratch + scratchUsed).update(from: b + segment, count: n)
                        scratchUsed += n
                        unescaped = true
                        segment = qi + 2
                        k += 2
                        continue
                    }
                    if qi + 1 == e && !input.isAtEnd { return .needMore(insideQuotes: false) }
                    if !mustBeQuoted && !unescaped { verbatim = false }
                    if unescaped {
                        let n = qi - segment
                        (input.scratch + scratchUsed).update(from: b + segment, count: n)
                        scratchUsed += n
                        fields.append(input.scratch + scratchStart, count: scratchUsed - scratchStart)
                    } else {
                        fields.append(b + contentStart, count: qi - contentStart)
                    }
                    k += 1
                    q = qi + 1
                    break
                }
                if q == e { return .record(end: q, newlines: newlines, verbatim: verbatim) }
                // The byte after the closing quote must end the field (be listed).
                if Int(ix[k]) != q { return .malformed("unexpected character after a closing quote", at: q) }
                c = b[q]
            } else {
                fields.append(b + fieldStart, count: q - fieldStart)
            }
            k += 1
            fieldStart = q + 1
            if c == d { continue }
            if c == 10 { return .record(end: q + 1, newlines: newlines + 1, verbatim: verbatim) }
            if c == 13 { return endAtCR(q, in: input, newlines: newlines) }
            // A quote right after a closing quote would have been `""`.
            return .malformed("unexpected character after a closing quote", at: q)
        }
    }

    /// The record ends at the CR at `p`: CRLF, or a lone CR (both a line end). Such a record is
    /// never verbatim: a writer ends its lines with LF.
    @inline(__always)
    private static func endAtCR(_ p: Int, in input: RecordInput, newlines: Int64) -> ParseOutcome {
        if p + 1 < input.end {
            return .record(end: input.bytes[p + 1] == 10 ? p + 2 : p + 1, newlines: newlines + 1, verbatim: false)
        }
        if !input.isAtEnd { return .needMore(insideQuotes: false) }
        return .record(end: p + 1, newlines: newlines + 1, verbatim: false)
    }

    @inline(__always)
    static func check(_ record: UnsafeRawBufferPointer, fieldCount: Int, expectedFields: Int?) -> RecordCheck {
        if fieldCount == 1 && (record[0] == 10 || record[0] == 13) { return .skip }
        if let expected = expectedFields, fieldCount != expected {
            return .reject("expected \(expected) fields, found \(fieldCount)")
        }
        return .accept
    }
}
