import CScan

/// One record parsed ahead by a ``BlockParser`` (see `cscan_record`).
package typealias ParsedRecord = cscan_record

/// Parses the whole records of a read-ahead block on the read-ahead thread, so that two cores
/// share the parsing: the reader takes these records as they are when it arrives exactly at
/// ``start`` (which only then is known to be a record start), and parses on its own from
/// ``end``.
///
/// Where a block's first record starts is guessed from the parity of the quotes before it
/// (in valid CSV a line end is a record end exactly when an even number of quotes lies between
/// it and the last record start). A wrong guess (after malformed input) costs only the work:
/// the reader never arrives at a position that is not a record start.
///
/// The parsing is RecordReader's, in C (`cscan_parse_records`), for a block with no more input
/// after it: it stops before the first record that is not whole in the block, is malformed, or
/// does not fit. (It writes ``Field`` values as pairs of pointers: parsing ahead is off unless
/// ``fieldsMatchC``.)
package final class BlockParser {
    let records: UnsafeMutablePointer<ParsedRecord>
    let recordCapacity: Int
    let fields: UnsafeMutablePointer<Field>
    let fieldCapacity: Int
    /// Fields with `""` escapes, unescaped.
    let scratch: UnsafeMutablePointer<UInt8>

    /// Where the parsed records start, or -1 when there are none.
    package private(set) var start = -1
    /// Where they end.
    package private(set) var end = -1
    /// An index in the block's list of special bytes at or before the first one at ``end``.
    package private(set) var endSpecial = 0
    package private(set) var count = 0

    init(blockSize: Int) {
        // An average record of 16 bytes or more, and fields of 8 or more, fit.
        recordCapacity = max(blockSize / 16, 16)
        fieldCapacity = max(blockSize / 8, 64)
        records = .allocate(capacity: recordCapacity)
        fields = .allocate(capacity: fieldCapacity)
        scratch = .allocate(capacity: blockSize)
    }

    deinit {
        records.deallocate()
        fields.deallocate()
        scratch.deallocate()
    }

    /// Forgets the records.
    func clear() {
        start = -1
        end = -1
        count = 0
    }

    /// Whether an odd number of quotes lies at the listed positions `ix[from..<to]` of `b`.
    static func oddQuotes(_ b: UnsafePointer<UInt8>, _ ix: UnsafePointer<UInt32>, from: Int, to: Int) -> Bool {
        var odd = false
        for i in from..<to where b[Int(ix[i])] == 34 { odd.toggle() }
        return odd
    }

    /// Parses the block ending at `b + e` whose special bytes are listed in `ix[0..<n]` (with
    /// `ix[n] == e`), when its first byte lies inside quotes if `insideQuotes`. Returns whether
    /// an odd number of quotes follows the last parsed record (or, with none parsed, lies in the
    /// block), for the next block.
    ///
    /// When no record start is found, or the parse stops at a malformed record, the quotes
    /// before the block may have been miscounted (a stray quote in malformed input makes every
    /// later guess wrong): the other guess is tried too, and the one that parses further kept.
    func parse(_ b: UnsafeMutablePointer<UInt8>, end e: Int, specials ix: UnsafePointer<UInt32>, count n: Int,
               delimiter d: UInt8, insideQuotes: Bool) -> Bool {
        clear()
        var kept = attempt(b, end: e, specials: ix, count: n, delimiter: d, insideQuotes: insideQuotes)
        if kept.start < 0 || kept.malformed {
            let other = attempt(b, end: e, specials: ix, count: n, delimiter: d, insideQuotes: !insideQuotes)
            if other.count > 0 && other.end > kept.end {
                kept = other
            } else if kept.count > 0 {
                // The other attempt wrote over this one's records.
                kept = attempt(b, end: e, specials: ix, count: n, delimiter: d, insideQuotes: insideQuotes)
            }
        }
        if kept.count > 0 {
            start = kept.start
            end = kept.end
            endSpecial = kept.endSpecial
            count = kept.count
        }
        return kept.insideAfter
    }

    private struct Attempt {
        var start = -1
        var end = -1
        var endSpecial = 0
        var count = 0
        var malformed = false
        var insideAfter = false
    }

    /// One guess: the first record start is just after the first line end outside quotes.
    private func attempt(_ b: UnsafeMutablePointer<UInt8>, end e: Int, specials ix: UnsafePointer<UInt32>, count n: Int,
                         delimiter d: UInt8, insideQuotes: Bool) -> Attempt {
        var result = Attempt()
        var inside = insideQuotes
        var k = 0
        var s = -1
        while k < n {
            let at = Int(ix[k])
            let c = b[at]
            k += 1
            if c == 34 {
                inside.toggle()
            } else if !inside && (c == 10 || c == 13) {
                if c == 13 {
                    if at + 1 >= e { break }
                    if b[at + 1] == 10 {
                        s = at + 2
                        k += 1
                    } else {
                        s = at + 1
                    }
                } else {
                    s = at + 1
                }
                break
            }
        }
        guard s >= 0 else {
            result.insideAfter = inside
            return result
        }
        var last = 0
        var lastSpecial = 0
        var malformed: Int32 = 0
        let parsed = UnsafeMutableRawPointer(fields).withMemoryRebound(to: cscan_field.self, capacity: fieldCapacity) {
            cscan_parse_records(b, s, e, ix, k, d, records, recordCapacity, $0, fieldCapacity, scratch,
                                &last, &lastSpecial, &malformed)
        }
        result.start = s
        result.end = last
        result.endSpecial = lastSpecial
        result.count = parsed
        result.malformed = malformed != 0
        // Records end outside quotes: count from the last one's end.
        var i = lastSpecial
        while i < n && Int(ix[i]) < last { i += 1 }
        result.insideAfter = BlockParser.oddQuotes(b, ix, from: i, to: n)
        return result
    }

    /// Whether a `Field` is laid out as the C parser writes it (two pointers: start and end).
    static let fieldsMatchC: Bool = {
        guard MemoryLayout<Field>.size == MemoryLayout<cscan_field>.size,
              MemoryLayout<Field>.stride == MemoryLayout<cscan_field>.stride else { return false }
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 8)
        defer { bytes.deallocate() }
        var c = cscan_field(start: bytes + 1, end: bytes + 6)
        let field = withUnsafeBytes(of: &c) { $0.load(as: Field.self) }
        return field.bytes.baseAddress == UnsafeRawPointer(bytes + 1) && field.bytes.count == 5
    }()
}
