import CScan

/// Splits a byte stream into records and fields, keeping each record's byte offsets.
///
/// It reads large blocks into one reused buffer (or, from a ``ReadAheadSource``, borrows the
/// source's blocks and puts the partial record it has left in front of the next one) with the
/// position of every delimiter, quote, CR and LF in them, found by a vectorised scan
/// (`cscan_index_specials`, on the read-ahead thread when there is one), for the formats that
/// use them. A record's fields are views into the buffer, or into a scratch buffer when
/// escapes had to be removed. Nothing is allocated per record.
///
/// The syntax of each format is a ``RecordSyntax`` type (``CSVRecordFormat``,
/// ``LineRecordFormat``), each in a file of its own; this type is the buffer machinery they
/// share, and the record loop, specialised on each.
package final class RecordReader {
    package enum Next {
        case record
        case malformed(MalformedRecord)
        case end
    }

    let source: ByteSource
    /// The source, when it lists the special bytes itself (for this reader's delimiter).
    let indexing: (any IndexingByteSource)?
    let format: RecordFormat
    let delimiter: UInt8
    /// Whether the format's parser reads the list of special bytes (see ``RecordSyntax``).
    let usesSpecialBytes: Bool
    /// Whether a lone CR ends a line, for finding where a malformed record ends.
    private let loneCREndsLine: Bool
    let maxRecordBytes: Int
    /// The most fields a record may have; a record with more is bad. This bounds the memory a
    /// record of nothing but delimiters takes (16 to 32 bytes per field).
    let maxFields: Int
    /// The field count every record must have (set from the header), unless ``flexible``.
    @exclusivity(unchecked) package var expectedFields: Int?
    @exclusivity(unchecked) package var flexible = false

    // The buffer's state is internal, not private, only for the refill (RecordReader+Refill.swift).
    /// The buffer as the format's parser reads it, lent to the parser by reference: ``buf``,
    /// ``end``, ``eof``, ``specials``, ``nextSpecial`` and ``scratch`` (at the end of this
    /// type) are its fields.
    @exclusivity(unchecked) var input: RecordInput
    @exclusivity(unchecked) var capacity: Int
    @exclusivity(unchecked) var pos = 0
    @exclusivity(unchecked) var baseOffset: Int64 = 0
    @exclusivity(unchecked) private var nextLine: Int64 = 1
    @exclusivity(unchecked) var specialCount = 0
    /// The reader's own buffer and list; `buf` and `specials` are these, or a lent block's.
    @exclusivity(unchecked) var ownBuf: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) var ownCapacity: Int
    @exclusivity(unchecked) var ownSpecials: UnsafeMutablePointer<UInt32>
    /// Entries in `ownSpecials`: it grows with the special bytes listed, not with the buffer.
    @exclusivity(unchecked) var ownSpecialsCapacity: Int
    /// The source that lends whole blocks, and the block that is the buffer now.
    let lender: ReadAheadSource?
    @exclusivity(unchecked) var lent: ReadAheadSource.LentBlock?

    /// The fields of the records this reader parses.
    @exclusivity(unchecked) private var fieldList: FieldList
    /// The current record's fields: `fieldList`'s, or a block's parsed ahead.
    @exclusivity(unchecked) private var rowFields: UnsafeMutablePointer<Field>
    /// Where the records of the lent block parsed ahead start (see ``BlockParser``), or -1:
    /// arriving exactly there, the reader takes them instead of parsing.
    @exclusivity(unchecked) var parsedAt = -1
    @exclusivity(unchecked) var parsedRecord: UnsafeMutablePointer<ParsedRecord>?
    @exclusivity(unchecked) var parsedLeft = 0
    @exclusivity(unchecked) var parsedFields: UnsafeMutablePointer<Field>?
    /// How many list entries the parser skipped to reach the records it parsed (for tests).
    @exclusivity(unchecked) package private(set) var entriesSkipped = 0
    /// How many times the buffer was refilled (for tests).
    @exclusivity(unchecked) package internal(set) var refills = 0
    /// How many records were taken as parsed ahead (for tests).
    @exclusivity(unchecked) package private(set) var recordsParsedAhead = 0
    /// ``nextSpecial`` after the last record parsed ahead.
    @exclusivity(unchecked) var parsedEndSpecial = 0
    @exclusivity(unchecked) private var fieldCount = 0
    @exclusivity(unchecked) var recordStart = 0
    @exclusivity(unchecked) var recordEnd = 0
    /// Whether the current record is exactly what writing its fields back gives (see ``Row``).
    @exclusivity(unchecked) private var recordIsVerbatim = false

    /// The byte offset where the current record starts.
    @exclusivity(unchecked) package private(set) var recordOffset: Int64 = 0
    /// The 1-based line where the current record starts.
    @exclusivity(unchecked) package private(set) var recordLine: Int64 = 1

    package init(source: ByteSource, format: RecordFormat, delimiter: UInt8, bufferSize: Int = 1 << 20,
                 maxRecordBytes: Int = 64 << 20, maxFields: Int = RecordReader.defaultMaxFields) {
        self.source = source
        let syntax = format.syntax
        usesSpecialBytes = syntax.usesSpecialBytes
        loneCREndsLine = syntax.loneCREndsLine
        if syntax.usesSpecialBytes, let indexing = source as? any IndexingByteSource, indexing.indexedDelimiter == delimiter {
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
        // Blocks are lent only when every record one can hold is within the limit.
        if let ahead = source as? ReadAheadSource, indexing != nil,
           ahead.headroom + ahead.blockSize <= min(capacity, self.maxRecordBytes) {
            lender = ahead
        } else {
            lender = nil
        }
        ownCapacity = capacity
        if let lender, syntax.isParsedAhead, lender.parsesRecords == .never, BlockParser.fieldsMatchC {
            lender.parsesRecords = .whenReaderBusy
        }
        ownBuf = .allocate(capacity: capacity)
        fieldList = FieldList(capacity: 64, limit: self.maxFields)
        rowFields = fieldList.base
        ownSpecialsCapacity = capacity + 65
        ownSpecials = .allocate(capacity: ownSpecialsCapacity)
        ownSpecials[0] = 0
        input = RecordInput(bytes: ownBuf, end: 0, isAtEnd: false, delimiter: delimiter, specials: ownSpecials,
                            nextSpecial: 0, scratch: .allocate(capacity: capacity))
    }

    /// The default ``maxFields``.
    package static let defaultMaxFields = 1_000_000

    /// The largest ``maxRecordBytes`` a reader accepts.
    package static let largestRecordLimit = 1 << 30

    deinit {
        if let lent { lender?.giveBack(lent) }
        ownBuf.deallocate()
        scratch.deallocate()
        fieldList.deallocate()
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
        // The table of ``RecordFormat/syntax``, as a switch: one branch per record, to the
        // record loop specialised on the format.
        switch format {
        case .csv, .tsv: try next(syntax: CSVRecordFormat.self)
        case .lines: try next(syntax: LineRecordFormat.self)
        }
    }

    /// ``next()`` for records of the syntax `Syntax`: the loop every record goes through.
    @inline(__always)
    private func next<Syntax: RecordSyntax>(syntax _: Syntax.Type) throws -> Next {
        while true {
            if Syntax.isParsedAhead && pos == parsedAt && takeRecordParsedAhead() {
                switch checkRecord(Syntax.self, tooManyFields: false) {
                case .accept: return .record
                case .skip: continue
                case .reject(let reason): return .malformed(malformedCurrentRecord(reason))
                }
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
            // The first list entry at or after the record's start (the list ends with `end`).
            var first = nextSpecial
            if Syntax.usesSpecialBytes {
                while Int(specials[first]) < pos { first += 1 }
                entriesSkipped &+= first - nextSpecial
            }
            nextSpecial = first
            fieldList.removeAll()
            switch Syntax.parseRecord(at: pos, in: &input, into: &fieldList) {
            case .record(let recordEnd, let newlines, let verbatim):
                recordStart = pos
                self.recordEnd = recordEnd
                rowFields = fieldList.base
                fieldCount = fieldList.count
                recordIsVerbatim = verbatim
                recordOffset = baseOffset + Int64(pos)
                recordLine = nextLine
                pos = recordEnd
                nextLine += newlines
                switch checkRecord(Syntax.self, tooManyFields: fieldList.overflowed) {
                case .accept: return .record
                case .skip: continue
                case .reject(let reason): return .malformed(malformedCurrentRecord(reason))
                }
            case .needMore(let insideQuotes):
                if try !refill(insideQuotes: insideQuotes) {
                    return .malformed(try skipOverlongRecord())
                }
            case .malformed(let staticReason, let at):
                let reason = "\(staticReason)"
                // The parser may have looked far ahead (an unterminated quote): the next record
                // starts before that, but not before this one.
                nextSpecial = first
                // Resynchronise at the next line feed after the error.
                if let lf = findLineFeed(from: at) {
                    return .malformed(malformed(reason, errorAt: at, resync: lf, newlines: countLineFeeds(pos, lf)))
                }
                if !eof {
                    if try refill() { continue }
                }
                return .malformed(malformed(reason, errorAt: at, resync: end, newlines: countLineFeeds(pos, end)))
            }
        }
    }

    /// Takes the record parsed ahead at ``pos`` (never at the input's start, nor at the end of
    /// the buffer) as the current record. False for a record with more than ``maxFields``
    /// fields: the parser on the read-ahead thread knows no field limit, and leaves the rest of
    /// its block to this thread's, which reports it.
    @inline(__always)
    private func takeRecordParsedAhead() -> Bool {
        let record = parsedRecord!.pointee
        if Int(record.field_count) > maxFields {
            parsedAt = -1
            return false
        }
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
        if parsedLeft == 0 {
            parsedAt = -1
            nextSpecial = parsedEndSpecial
        } else {
            parsedAt = pos
        }
        return true
    }

    /// Checks the record just parsed: one with more than ``maxFields`` fields is malformed,
    /// whatever its format; the format checks the rest.
    @inline(__always)
    private func checkRecord<Syntax: RecordSyntax>(_: Syntax.Type, tooManyFields: Bool) -> RecordCheck {
        if tooManyFields { return .reject("more than \(maxFields) fields (--max-fields)") }
        return Syntax.check(rawRecord, fieldCount: fieldCount, expectedFields: flexible ? nil : expectedFields)
    }

    /// The buffer is full and may not grow: reports the record as too long and skips to the
    /// first line feed after its start, reading on as far as needed.
    private func skipOverlongRecord() throws -> MalformedRecord {
        let reason = "record longer than \(maxRecordBytes) bytes (an unterminated quote?)"
        if let resync = findLineFeed(from: pos) {
            return malformed(reason, errorAt: pos, resync: resync, newlines: 1)
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

    /// The current record (just parsed, and passed), as malformed.
    private func malformedCurrentRecord(_ reason: String) -> MalformedRecord {
        MalformedRecord(reason: reason, offset: recordOffset, errorOffset: recordOffset,
                        line: recordLine, raw: Array(UnsafeBufferPointer(start: buf + recordStart, count: recordEnd - recordStart)))
    }

    /// The bytes from ``pos`` to `resync` (holding `newlines` line feeds), malformed at
    /// `errorAt`, as the current record, and passes them.
    private func malformed(_ reason: String, errorAt: Int, resync: Int, newlines: Int64) -> MalformedRecord {
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
        if loneCREndsLine, crLimit > 0, let cr = memchr(buf + from, 13, crLimit) {
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

    // The buffer's state, kept in ``input``.
    var buf: UnsafeMutablePointer<UInt8> {
        @inline(__always) get { input.bytes }
        @inline(__always) set { input.bytes = newValue }
    }
    var end: Int {
        @inline(__always) get { input.end }
        @inline(__always) set { input.end = newValue }
    }
    var eof: Bool {
        @inline(__always) get { input.isAtEnd }
        @inline(__always) set { input.isAtEnd = newValue }
    }
    /// Positions in `buf` of every special byte of `buf[0..<end]` at or after the first
    /// unparsed record (for a format that uses them), then `end` as a sentinel.
    var specials: UnsafeMutablePointer<UInt32> {
        @inline(__always) get { input.specials }
        @inline(__always) set { input.specials = newValue }
    }
    /// The first entry of `specials` that may lie at or after the parser's position.
    var nextSpecial: Int {
        @inline(__always) get { input.nextSpecial }
        @inline(__always) set { input.nextSpecial = newValue }
    }
    var scratch: UnsafeMutablePointer<UInt8> {
        @inline(__always) get { input.scratch }
        @inline(__always) set { input.scratch = newValue }
    }
}
