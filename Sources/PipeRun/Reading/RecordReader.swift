import CScan

/// Splits a byte stream into records and fields, keeping each record's byte offsets.
///
/// It reads large blocks into one reused buffer (or, from a ``ReadAheadSource``, borrows the
/// source's blocks and puts the partial record it has left in front of the next one) with the
/// position of every delimiter, quote, CR and LF in them, found by a vectorised scan
/// (`cscan_index_specials`, on the read-ahead thread when there is one). A field then ends at
/// the next listed position (for a quoted field: the next listed quote that is not doubled).
/// A record's fields are views into the buffer, or into a scratch buffer when `""` escapes had
/// to be removed. Nothing is allocated per record.
package final class RecordReader {
    package enum Next {
        case record
        case malformed(MalformedRecord)
        case end
    }

    private enum Step {
        case done(end: Int, newlines: Int64)
        case needMore
        case bad(StaticString, at: Int)
    }

    let source: ByteSource
    /// The source, when it lists the special bytes itself (for this reader's delimiter).
    private let indexing: (any IndexingByteSource)?
    let format: RecordFormat
    let delimiter: UInt8
    let maxRecordBytes: Int
    /// The most fields a record may have; a record with more is bad. This bounds the memory a
    /// record of nothing but delimiters takes (16 to 32 bytes per field).
    let maxFields: Int
    /// The field count every record must have (set from the header), unless ``flexible``.
    @exclusivity(unchecked) package var expectedFields: Int?
    @exclusivity(unchecked) package var flexible = false

    @exclusivity(unchecked) private var buf: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var scratch: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var pos = 0
    @exclusivity(unchecked) private var end = 0
    @exclusivity(unchecked) private var eof = false
    @exclusivity(unchecked) private var baseOffset: Int64 = 0
    @exclusivity(unchecked) private var nextLine: Int64 = 1
    /// Positions in `buf` of every special byte of `buf[0..<end]` at or after the first
    /// unparsed record (CSV and TSV only), then `end` as a sentinel.
    @exclusivity(unchecked) private var specials: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) private var specialCount = 0
    /// The reader's own buffer and list; `buf` and `specials` are these, or a lent block's.
    @exclusivity(unchecked) private var ownBuf: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var ownCapacity: Int
    @exclusivity(unchecked) private var ownSpecials: UnsafeMutablePointer<UInt32>
    /// Entries in `ownSpecials`: it grows with the special bytes listed, not with the buffer.
    @exclusivity(unchecked) private var ownSpecialsCapacity: Int
    /// The source that lends whole blocks, and the block that is the buffer now.
    private let lender: ReadAheadSource?
    @exclusivity(unchecked) private var lent: ReadAheadSource.LentBlock?
    /// The first entry of `specials` that may lie at or after the parser's position.
    @exclusivity(unchecked) private var nextSpecial = 0
    /// Set when the parser asks for more input in the middle of a quoted field (only a quote
    /// can end the record then); read and cleared by every refill.
    @exclusivity(unchecked) private var stoppedInQuotes = false
    /// The first entry at or after the start of the record being parsed.
    @exclusivity(unchecked) private var recordFirstSpecial = 0

    @exclusivity(unchecked) private var fields: UnsafeMutablePointer<Field>
    /// The current record's fields: `fields`, or a block's parsed ahead.
    @exclusivity(unchecked) private var rowFields: UnsafeMutablePointer<Field>
    /// Where the records of the lent block parsed ahead start (see ``BlockParser``), or -1:
    /// arriving exactly there, the reader takes them instead of parsing.
    @exclusivity(unchecked) private var parsedAt = -1
    @exclusivity(unchecked) private var parsedRecord: UnsafeMutablePointer<ParsedRecord>?
    @exclusivity(unchecked) private var parsedLeft = 0
    @exclusivity(unchecked) private var parsedFields: UnsafeMutablePointer<Field>?
    /// How many list entries the parser skipped to reach the records it parsed (for tests).
    @exclusivity(unchecked) package private(set) var entriesSkipped = 0
    /// How many times the buffer was refilled (for tests).
    @exclusivity(unchecked) package private(set) var refills = 0
    /// How many records were taken as parsed ahead (for tests).
    @exclusivity(unchecked) package private(set) var recordsParsedAhead = 0
    /// ``nextSpecial`` after the last record parsed ahead.
    @exclusivity(unchecked) private var parsedEndSpecial = 0
    @exclusivity(unchecked) private var fieldCapacity = 64
    @exclusivity(unchecked) private var fieldCount = 0
    @exclusivity(unchecked) private var recordStart = 0
    @exclusivity(unchecked) private var recordEnd = 0
    /// Whether the current record is exactly what writing its fields back gives (see ``Row``).
    @exclusivity(unchecked) private var recordIsVerbatim = false
    /// Set by the parser at a CR line end or a quoted field that needs no quotes.
    @exclusivity(unchecked) private var sawQuoteOrCR = false
    /// Whether the record just parsed has more than ``maxFields`` fields.
    @exclusivity(unchecked) private var tooManyFields = false

    /// The byte offset where the current record starts.
    @exclusivity(unchecked) package private(set) var recordOffset: Int64 = 0
    /// The 1-based line where the current record starts.
    @exclusivity(unchecked) package private(set) var recordLine: Int64 = 1

    package init(source: ByteSource, format: RecordFormat, delimiter: UInt8, bufferSize: Int = 1 << 20,
                 maxRecordBytes: Int = 64 << 20, maxFields: Int = RecordReader.defaultMaxFields) {
        self.source = source
        if format != .lines, let indexing = source as? any IndexingByteSource, indexing.indexedDelimiter == delimiter {
            self.indexing = indexing
        } else {
            indexing = nil
        }
        self.format = format
        self.delimiter = delimiter
        // Positions are 32-bit: a record may not reach 4 GiB.
        self.maxRecordBytes = min(max(maxRecordBytes, 1024), RecordReader.largestRecordLimit)
        capacity = min(max(bufferSize, 64), self.maxRecordBytes)
        self.maxFields = max(maxFields, 1)
        fieldCapacity = min(fieldCapacity, self.maxFields)
        // Blocks are lent only when every record one can hold is within the limit.
        if let ahead = source as? ReadAheadSource, indexing != nil,
           ahead.headroom + ahead.blockSize <= min(capacity, self.maxRecordBytes) {
            lender = ahead
        } else {
            lender = nil
        }
        ownCapacity = capacity
        if let lender, format != .lines, lender.parsesRecords == .never, BlockParser.fieldsMatchC {
            lender.parsesRecords = .whenReaderBusy
        }
        ownBuf = .allocate(capacity: capacity)
        buf = ownBuf
        scratch = .allocate(capacity: capacity)
        fields = .allocate(capacity: fieldCapacity)
        rowFields = fields
        ownSpecialsCapacity = capacity + 65
        ownSpecials = .allocate(capacity: ownSpecialsCapacity)
        specials = ownSpecials
        specials[0] = 0
    }

    /// The default ``maxFields``.
    package static let defaultMaxFields = 1_000_000

    /// The largest ``maxRecordBytes`` a reader accepts.
    package static let largestRecordLimit = 1 << 30

    deinit {
        if let lent { lender?.giveBack(lent) }
        ownBuf.deallocate()
        scratch.deallocate()
        fields.deallocate()
        ownSpecials.deallocate()
    }

    /// The byte offset just after the last record returned: where a resumed job starts.
    package var cursor: Int64 { baseOffset + Int64(pos) }
    /// The 1-based line of the byte at ``cursor``.
    package var cursorLine: Int64 { nextLine }

    /// The current record's fields, valid until the next call to ``next()``.
    @inline(__always)
    package var row: Row {
        let raw = UnsafeRawBufferPointer(start: buf + recordStart, count: recordEnd - recordStart)
        let fields = UnsafeBufferPointer(start: rowFields, count: fieldCount)
        return recordIsVerbatim
            ? Row(fields: fields, line: recordLine, offset: recordOffset, verbatim: raw)
            : Row(fields: fields, line: recordLine, offset: recordOffset, raw: raw)
    }

    /// The current record's bytes, including its line end.
    package var rawRecord: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buf + recordStart, count: recordEnd - recordStart)
    }

    /// Continues reading at `offset`, which is the start of line `line`.
    package func seek(to offset: Int64, line: Int64) throws {
        try source.seek(to: offset)
        sourceMoved(to: offset, line: line)
    }

    /// Continues reading at `offset` (line `line`), where the source has already been moved.
    package func sourceMoved(to offset: Int64, line: Int64) {
        parsedAt = -1
        if let lent {
            lender?.giveBack(lent)
            self.lent = nil
            buf = ownBuf
            capacity = ownCapacity
            specials = ownSpecials
        }
        pos = 0
        end = 0
        eof = false
        baseOffset = offset
        nextLine = line
        specialCount = 0
        nextSpecial = 0
        specials[0] = 0
    }

    /// Moves to the next record.
    package func next() throws -> Next {
        while true {
            // The parser of parsed-ahead records knows no field limit: leave a record with too
            // many fields to this thread's parser, which reports it.
            if pos == parsedAt && Int(parsedRecord!.pointee.field_count) > maxFields { parsedAt = -1 }
            if pos == parsedAt {
                // A record parsed ahead on the read-ahead thread (never at the input's start,
                // nor at the end of the buffer).
                let record = parsedRecord!.pointee
                parsedRecord! += 1
                parsedLeft -= 1
                recordStart = pos
                recordEnd = Int(record.end)
                rowFields = parsedFields! + Int(record.first_field)
                fieldCount = Int(record.field_count)
                recordIsVerbatim = record.flags & 1 != 0
                recordOffset = baseOffset + Int64(pos)
                recordLine = nextLine
                pos = recordEnd
                nextLine += Int64(record.flags >> 1)
                recordsParsedAhead += 1
                // (Left set when the last record this thread parsed was too wide and bad as well.)
                tooManyFields = false
                if parsedLeft == 0 {
                    parsedAt = -1
                    nextSpecial = parsedEndSpecial
                } else {
                    parsedAt = pos
                }
                if let malformed = checkRecord() {
                    if let malformed { return .malformed(malformed) }
                    continue
                }
                return .record
            }
            if pos == end {
                if eof { return .end }
                try refill()
                continue
            }
            if baseOffset + Int64(pos) == 0 {
                // A UTF-8 byte order mark is not part of the first field.
                if end - pos < 3 && !eof { try refill(); continue }
                if end - pos >= 3 && buf[pos] == 0xEF && buf[pos + 1] == 0xBB && buf[pos + 2] == 0xBF { pos += 3; continue }
            }
            sawQuoteOrCR = false
            tooManyFields = false
            let step = format == .lines ? parseLine(pos) : parseCSVRecord(pos)
            switch step {
            case .done(let recEnd, let newlines):
                recordStart = pos
                recordEnd = recEnd
                rowFields = fields
                recordIsVerbatim = !sawQuoteOrCR
                recordOffset = baseOffset + Int64(pos)
                recordLine = nextLine
                pos = recEnd
                nextLine += newlines
                if format != .lines, let malformed = checkRecord() {
                    if let malformed { return .malformed(malformed) }
                    continue
                }
                return .record
            case .needMore:
                if try !refill() {
                    return .malformed(try skipOverlongRecord())
                }
            case .bad(let staticReason, let at):
                let reason = "\(staticReason)"
                // The parser may have looked far ahead (an unterminated quote): the next record
                // starts before that, but not before this one.
                nextSpecial = recordFirstSpecial
                // Resynchronise at the next line feed after the error.
                if let lf = findLineFeed(from: at) {
                    return .malformed(malformed(reason, errorAt: at, resync: lf, newlines: countLineFeeds(pos, lf),
                                                alreadyAdvanced: false))
                }
                if !eof {
                    if try refill() { continue }
                }
                return .malformed(malformed(reason, errorAt: at, resync: end, newlines: countLineFeeds(pos, end),
                                            alreadyAdvanced: false))
            }
        }
    }

    /// Checks the CSV or TSV record just parsed: nil when it is good, `.some(nil)` when it is a
    /// blank line (no record, as in Python's csv module and most CSV tools), else why it is bad.
    @inline(__always)
    private func checkRecord() -> MalformedRecord?? {
        let first = buf[recordStart]
        if fieldCount == 1 && (first == 10 || first == 13) { return .some(nil) }
        if tooManyFields {
            tooManyFields = false
            let reason = "more than \(maxFields) fields (--max-fields)"
            return .some(malformed(reason, errorAt: recordStart, resync: recordEnd, newlines: 0, alreadyAdvanced: true))
        }
        if let expected = expectedFields, fieldCount != expected, !flexible {
            let reason = "expected \(expected) fields, found \(fieldCount)"
            return .some(malformed(reason, errorAt: recordStart, resync: recordEnd, newlines: 0, alreadyAdvanced: true))
        }
        return nil
    }

    /// The buffer is full and may not grow: reports the record as too long and skips to the
    /// first line feed after its start, reading on as far as needed.
    private func skipOverlongRecord() throws -> MalformedRecord {
        let reason = "record longer than \(maxRecordBytes) bytes (an unterminated quote?)"
        if let resync = findLineFeed(from: pos) {
            return malformed(reason, errorAt: pos, resync: resync, newlines: 1, alreadyAdvanced: false)
        }
        let record = MalformedRecord(reason: reason, offset: baseOffset + Int64(pos), errorOffset: baseOffset + Int64(pos),
                                     line: nextLine, raw: Array(UnsafeBufferPointer(start: buf + pos, count: min(end - pos, 4096))))
        while true {
            pos = end
            if eof { break }
            try refill()
            if let resync = findLineFeed(from: pos) {
                pos = resync
                nextLine += 1
                break
            }
        }
        recordStart = pos
        recordEnd = pos
        recordOffset = record.offset
        recordLine = record.line
        return record
    }

    private func malformed(_ reason: String, errorAt: Int, resync: Int, newlines: Int64,
                           alreadyAdvanced: Bool) -> MalformedRecord {
        if alreadyAdvanced {
            // recordStart/recordEnd/pos already describe the record.
            return MalformedRecord(reason: reason, offset: recordOffset, errorOffset: recordOffset,
                                   line: recordLine, raw: Array(UnsafeBufferPointer(start: buf + recordStart, count: recordEnd - recordStart)))
        }
        let record = MalformedRecord(
            reason: reason, offset: baseOffset + Int64(pos), errorOffset: baseOffset + Int64(errorAt),
            line: nextLine, raw: Array(UnsafeBufferPointer(start: buf + pos, count: resync - pos)))
        recordStart = pos
        recordEnd = resync
        recordOffset = record.offset
        recordLine = nextLine
        pos = resync
        nextLine += newlines
        return record
    }

    /// The index just past the next line end (LF, CRLF or a lone CR) at or after `from`, or nil.
    private func findLineFeed(from: Int) -> Int? {
        guard from < end else { return nil }
        let lf = memchr(buf + from, 10, end - from).map { $0.assumingMemoryBound(to: UInt8.self) - buf }
        let crLimit = (lf ?? end) - from
        if format != .lines, crLimit > 0, let cr = memchr(buf + from, 13, crLimit) {
            let at = cr.assumingMemoryBound(to: UInt8.self) - buf
            if at + 1 < end { return at + 1 }
            return eof ? at + 1 : nil
        }
        return lf.map { $0 + 1 }
    }

    private func countLineFeeds(_ from: Int, _ to: Int) -> Int64 {
        var n: Int64 = 0
        var p = from
        while p < to, let q = memchr(buf + p, 10, to - p) {
            n += 1
            p = q.assumingMemoryBound(to: UInt8.self) - buf + 1
        }
        return n
    }

    /// Moves the unread bytes to the front and reads more; grows the buffer when a record fills
    /// it. Returns false when the buffer is full and may not grow. With a read-ahead source that
    /// lends whole blocks, the unread bytes go in front of the next block instead, and the
    /// block is the buffer: nothing is copied but a partial record.
    @discardableResult
    private func refill() throws -> Bool {
        refills += 1
        // What could end a long partial record (see the filling below); the flag is the last
        // parse's, whichever way this refill goes.
        let ending: Int32 = stoppedInQuotes ? 34 : 10
        stoppedInQuotes = false
        // Keep the positions of the unread bytes' special bytes (the parser starts again at `pos`).
        var kept = 0
        var upper = specialCount
        while kept < upper {
            let middle = (kept + upper) / 2
            if Int(specials[middle]) < pos { kept = middle + 1 } else { upper = middle }
        }
        let unread = end - pos
        if let lender, !eof, unread <= lender.headroom, lender.canLendBlock {
            guard let block = try lender.takeBlock() else {
                // The end: the buffer stays as it is.
                nextSpecial = kept
                eof = true
                return true
            }
            specialCount -= kept
            let newPos = lender.headroom - unread
            if unread > 0 { (block.start + newPos).update(from: buf + pos, count: unread) }
            let moved = block.specials - specialCount
            let shift = UInt32(truncatingIfNeeded: newPos - pos)
            for i in 0..<specialCount { moved[i] = specials[kept + i] &+ shift }
            if let previous = lent { lender.giveBack(previous) }
            lent = block
            baseOffset += Int64(pos - newPos)
            buf = block.start
            pos = newPos
            end = lender.headroom + block.count
            capacity = end
            specials = moved
            specialCount += block.specialCount
            specials[specialCount] = UInt32(end)
            recordStart = pos
            recordEnd = pos
            nextSpecial = 0
            if let parsed = block.parsed {
                parsedAt = parsed.start
                parsedRecord = parsed.records
                parsedLeft = parsed.count
                parsedFields = parsed.fields
                parsedEndSpecial = specialCount - block.specialCount + parsed.endSpecial
            } else {
                parsedAt = -1
            }
            return true
        }
        parsedAt = -1
        specialCount -= kept
        if lent != nil || pos > 0 {
            // The unread bytes and their positions go to the front of the reader's own buffer
            // (from a lent block: a partial record longer than the room in front of a block).
            if unread > 0 { memmove(ownBuf, buf + pos, unread) }
            let shift = UInt32(pos)
            for i in 0..<specialCount { ownSpecials[i] = specials[kept + i] - shift }
            if let previous = lent {
                lender?.giveBack(previous)
                lent = nil
                buf = ownBuf
                capacity = ownCapacity
                specials = ownSpecials
            }
            baseOffset += Int64(pos)
            recordStart = 0
            recordEnd = 0
            pos = 0
            end = unread
        } else if kept > 0 {
            (specials).update(from: specials + kept, count: specialCount)
        }
        nextSpecial = 0
        specials[specialCount] = UInt32(end)
        if end == capacity {
            guard capacity < maxRecordBytes else { return false }
            let newCapacity = min(capacity * 2, maxRecordBytes)
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: buf, count: end)
            ownBuf.deallocate()
            scratch.deallocate()
            ownBuf = grown
            buf = grown
            scratch = .allocate(capacity: newCapacity)
            ownCapacity = newCapacity
            capacity = newCapacity
        }
        // A record as long as half the buffer or more: fill the buffer before parsing again. (A
        // record's parse starts over at its first byte; so a long record is parsed again only
        // each time the buffer has doubled, not after every read.)
        // (While nothing arrives that could end it: a line end, or a quote when the parse stopped
        // inside a quoted field. A pipe's writer may be waiting for the rows already read.)
        let fill = (end - pos) * 2 >= capacity
        repeat {
            let space = capacity - end
            if ownSpecialsCapacity - specialCount - 65 < min(space, 1 << 16) {
                growOwnSpecials(atLeast: specialCount + min(space, 1 << 20) + 65)
            }
            // Read no more than the list has room for (a scan may write 64 entries past its count).
            let room = UnsafeMutableRawBufferPointer(start: buf + end,
                                                     count: min(space, ownSpecialsCapacity - specialCount - 65))
            let n: Int
            if let indexing {
                // The source found the special bytes on another thread.
                let got = try indexing.read(into: room, specials: specials + specialCount, base: UInt32(end))
                n = got.bytes
                specialCount += got.specials
            } else {
                n = try source.read(into: room)
                if n > 0 && format != .lines {
                    specialCount += cscan_index_specials(buf + end, n, delimiter, UInt32(end), specials + specialCount)
                }
            }
            if n == 0 {
                eof = true
                break
            }
            end += n
            specials[specialCount] = UInt32(end)
            if fill && (memchr(buf + end - n, ending, n) != nil || ending == 10 && memchr(buf + end - n, 13, n) != nil) {
                break
            }
        } while fill && end < capacity
        return true
    }

    /// Grows the reader's own list of special bytes (which is `specials` then) to at least
    /// `count` entries, doubling.
    private func growOwnSpecials(atLeast count: Int) {
        let newCapacity = max(ownSpecialsCapacity * 2, count)
        let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        grown.update(from: ownSpecials, count: specialCount + 1)
        ownSpecials.deallocate()
        ownSpecials = grown
        specials = grown
        ownSpecialsCapacity = newCapacity
    }

    private func growFields() {
        let newCapacity = min(fieldCapacity * 2, maxFields)
        let grown = UnsafeMutablePointer<Field>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: fields, count: fieldCapacity)
        fields.deallocate()
        fields = grown
        fieldCapacity = newCapacity
    }

    @inline(__always)
    private func setField(_ index: Int, _ start: UnsafeMutablePointer<UInt8>, _ count: Int) {
        (fields + index).initialize(to: Field(UnsafeRawBufferPointer(start: start, count: count)))
    }

    /// One line, one field.
    private func parseLine(_ start: Int) -> Step {
        let b = buf
        if let q = memchr(b + start, 10, end - start) {
            let lf = q.assumingMemoryBound(to: UInt8.self) - b
            var fieldEnd = lf
            if fieldEnd > start && b[fieldEnd - 1] == 13 { fieldEnd -= 1; sawQuoteOrCR = true }
            setField(0, b + start, fieldEnd - start)
            fieldCount = 1
            return .done(end: lf + 1, newlines: 1)
        }
        if !eof { return .needMore }
        var fieldEnd = end
        if fieldEnd > start && b[fieldEnd - 1] == 13 { fieldEnd -= 1; sawQuoteOrCR = true }
        setField(0, b + start, fieldEnd - start)
        fieldCount = 1
        return .done(end: end, newlines: 0)
    }

    /// The record's `nf` fields end at the CR at `p`: CRLF, or a lone CR (both a line end).
    @inline(__always)
    private func endAtCR(_ p: Int, fields nf: Int, newlines: Int64) -> Step {
        sawQuoteOrCR = true
        if p + 1 < end {
            fieldCount = nf
            return .done(end: buf[p + 1] == 10 ? p + 2 : p + 1, newlines: newlines + 1)
        }
        if !eof { return .needMore }
        fieldCount = nf
        return .done(end: p + 1, newlines: newlines + 1)
    }

    /// One RFC 4180 record starting at `start`. Every special byte is listed, so each list
    /// entry ends a field, is a quote, or ends the line: a field starts just after the previous
    /// entry, and it is quoted when its first byte is listed (a quote).
    private func parseCSVRecord(_ start: Int) -> Step {
        let b = buf
        let e = end
        let d = delimiter
        let ix = specials
        var k = nextSpecial
        defer { nextSpecial = k }
        // The list ends with `e`, so this stops.
        let k0 = k
        while Int(ix[k]) < start { k += 1 }
        entriesSkipped &+= k - k0
        recordFirstSpecial = k
        var fieldStart = start
        var nf = 0
        var newlines: Int64 = 0
        var scratchUsed = 0
        while true {
            if nf == fieldCapacity {
                if nf == maxFields {
                    // Parse on to the record's end, keeping no more fields (the last slot is
                    // overwritten), and report the record as bad there.
                    tooManyFields = true
                    nf -= 1
                } else {
                    growFields()
                }
            }
            var q = Int(ix[k])
            if q == e {
                // No special byte left: the record goes on after the buffer, or ends the input.
                if !eof { return .needMore }
                setField(nf, b + fieldStart, e - fieldStart)
                fieldCount = nf + 1
                return .done(end: e, newlines: newlines)
            }
            var c = b[q]
            if c == 34 {
                if q != fieldStart { return .bad("a quote inside an unquoted field", at: q) }
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
                        if !eof {
                            stoppedInQuotes = true
                            return .needMore
                        }
                        return .bad("unterminated quoted field", at: fieldStart)
                    }
                    if qi + 1 < e && b[qi + 1] == 34 {
                        // `""` is one quote: copy what came before it, with one quote, to scratch.
                        let n = qi + 1 - segment
                        (scratch + scratchUsed).update(from: b + segment, count: n)
                        scratchUsed += n
                        unescaped = true
                        segment = qi + 2
                        k += 2
                        continue
                    }
                    if qi + 1 == e && !eof { return .needMore }
                    if !mustBeQuoted && !unescaped { sawQuoteOrCR = true }
                    if unescaped {
                        let n = qi - segment
                        (scratch + scratchUsed).update(from: b + segment, count: n)
                        scratchUsed += n
                        setField(nf, scratch + scratchStart, scratchUsed - scratchStart)
                    } else {
                        setField(nf, b + contentStart, qi - contentStart)
                    }
                    nf += 1
                    k += 1
                    q = qi + 1
                    break
                }
                if q == e {
                    fieldCount = nf
                    return .done(end: q, newlines: newlines)
                }
                // The byte after the closing quote must end the field (be listed).
                if Int(ix[k]) != q { return .bad("unexpected character after a closing quote", at: q) }
                c = b[q]
            } else {
                setField(nf, b + fieldStart, q - fieldStart)
                nf += 1
            }
            k += 1
            fieldStart = q + 1
            if c == d { continue }
            if c == 10 {
                fieldCount = nf
                return .done(end: q + 1, newlines: newlines + 1)
            }
            if c == 13 { return endAtCR(q, fields: nf, newlines: newlines) }
            // A quote right after a closing quote would have been `""`.
            return .bad("unexpected character after a closing quote", at: q)
        }
    }
}
