import Testing
@testable import PipeRun

/// Feeds bytes in chunks of a chosen size, to exercise every buffer boundary.
final class MemorySource: ByteSource {
    let bytes: [UInt8]
    let chunk: Int
    var position = 0

    init(_ text: String, chunk: Int = 1 << 20) {
        bytes = Array(text.utf8)
        self.chunk = chunk
    }

    init(bytes: [UInt8], chunk: Int = 1 << 20) {
        self.bytes = bytes
        self.chunk = chunk
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(chunk, buffer.count, bytes.count - position)
        if n > 0 {
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) }
        }
        position += n
        return n
    }

    func seek(to offset: Int64) throws { position = Int(offset) }
}

struct Parsed: Equatable, CustomStringConvertible {
    var rows: [[String]] = []
    var offsets: [Int64] = []
    var lines: [Int64] = []
    var errors: [String] = []
    var description: String { "rows: \(rows) offsets: \(offsets) lines: \(lines) errors: \(errors)" }
}

func parse(_ text: String, format: RecordFormat = .csv, chunk: Int = 1 << 20, bufferSize: Int = 1 << 20,
           expectedFields: Int? = nil, maxRecordBytes: Int = 64 << 20,
           maxFields: Int = RecordReader.defaultMaxFields) throws -> Parsed {
    let reader = RecordReader(source: MemorySource(text, chunk: chunk), format: format,
                              delimiter: format.defaultDelimiter, bufferSize: bufferSize,
                              maxRecordBytes: maxRecordBytes, maxFields: maxFields)
    reader.expectedFields = expectedFields
    var out = Parsed()
    loop: while true {
        switch try reader.next() {
        case .record:
            let row = reader.row
            out.rows.append((0..<row.count).map { row[$0].string })
            out.offsets.append(row.offset)
            out.lines.append(row.line)
        case .malformed(let bad):
            out.errors.append("line \(bad.line) byte \(bad.errorOffset): \(bad.reason)")
        case .end:
            break loop
        }
    }
    return out
}

@Suite struct ReaderTests {
    /// Every case is parsed whole, and again fed one byte at a time through a tiny buffer.
    func check(_ text: String, _ rows: [[String]], format: RecordFormat = .csv,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let whole = try parse(text, format: format)
        #expect(whole.rows == rows, sourceLocation: sourceLocation)
        #expect(whole.errors.isEmpty, sourceLocation: sourceLocation)
        for (chunk, buffer) in [(1, 64), (3, 64), (7, 128)] {
            let pieces = try parse(text, format: format, chunk: chunk, bufferSize: buffer)
            #expect(pieces == whole, "chunk \(chunk), buffer \(buffer)", sourceLocation: sourceLocation)
        }
    }

    @Test func plainRecords() throws {
        try check("a,b,c\n1,2,3\n", [["a", "b", "c"], ["1", "2", "3"]])
    }

    @Test func quotedDelimitersQuotesAndNewlines() throws {
        try check("a,\"b,c\",\"say \"\"hi\"\"\"\n\"x\ny\",\"\",\"r\r\nn\"\n",
                  [["a", "b,c", "say \"hi\""], ["x\ny", "", "r\r\nn"]])
    }

    @Test func crlfAndLoneCRRecordEnds() throws {
        try check("a,b\r\n1,2\r\n3,4\r5,6", [["a", "b"], ["1", "2"], ["3", "4"], ["5", "6"]])
    }

    @Test func finalRecordWithoutNewline() throws {
        try check("a,b\n1,2", [["a", "b"], ["1", "2"]])
        try check("a,b\n1,\"2\"", [["a", "b"], ["1", "2"]])
        try check("a,b\n1,", [["a", "b"], ["1", ""]])
    }

    @Test func byteOrderMarkIsSkipped() throws {
        try check("\u{FEFF}id,x\n1,2\n", [["id", "x"], ["1", "2"]])
    }

    @Test func blankLinesAreNotRecords() throws {
        try check("a\n\n1\r\n\r\n2\n\n", [["a"], ["1"], ["2"]])
        try check("\"\"\n", [[""]])
    }

    @Test func emptyFields() throws {
        try check(",,\n,\"\",\n", [["", "", ""], ["", "", ""]])
    }

    @Test func tsvUsesTabs() throws {
        try check("a\tb\n\"x\ty\"\t2\n", [["a", "b"], ["x\ty", "2"]], format: .tsv)
    }

    @Test func linesFormatOneFieldPerLine() throws {
        try check("GET / 200\r\nGET /x 500\n\nlast", [["GET / 200"], ["GET /x 500"], [""], ["last"]], format: .lines)
        try check("a \"quoted, text\n", [["a \"quoted, text"]], format: .lines)
    }

    @Test func utf8IsKept() throws {
        try check("名前,city\n\"Zoë, née X\",Kraków\n", [["名前", "city"], ["Zoë, née X", "Kraków"]])
    }

    @Test func offsetsAndLines() throws {
        let p = try parse("h\n\"a\nb\"\nc\r\nd")
        #expect(p.offsets == [0, 2, 8, 11])
        #expect(p.lines == [1, 2, 4, 5])
    }

    @Test func unterminatedQuoteAtEndOfInput() throws {
        let p = try parse("a,b\n1,\"open\n2,3\n")
        #expect(p.rows == [["a", "b"], ["2", "3"]])
        #expect(p.errors == ["line 2 byte 6: unterminated quoted field"])
    }

    @Test func quoteInsideUnquotedField() throws {
        let p = try parse("a,b\n1,x\"y\n2,3\n", chunk: 2, bufferSize: 64)
        #expect(p.rows == [["a", "b"], ["2", "3"]])
        #expect(p.errors == ["line 2 byte 7: a quote inside an unquoted field"])
    }

    @Test func characterAfterClosingQuote() throws {
        let p = try parse("\"a\"b,c\n1,2\n")
        #expect(p.rows == [["1", "2"]])
        #expect(p.errors == ["line 1 byte 3: unexpected character after a closing quote"])
    }

    @Test func fieldCountMustMatch() throws {
        let p = try parse("a,b\n1,2,3\n4,5\n", expectedFields: 2)
        #expect(p.rows == [["a", "b"], ["4", "5"]])
        #expect(p.errors == ["line 2 byte 4: expected 2 fields, found 3"])
    }

    @Test func recordsWithMoreFieldsThanTheLimitAreBad() throws {
        // Exactly the limit is fine; one more is bad, at any chunking, and the reader goes on
        // after the record's end (not after the next line feed, here inside a quoted field). The
        // field array grows on the way (the limit is above its first size).
        let wide = (0..<100).map(String.init)
        let text = "a\n" + wide.joined(separator: ",") + "\n" + (wide + ["\"x,\n\""]).joined(separator: ",") + "\n1\n"
        for chunk in [1 << 20, 5] {
            let p = try parse(text, chunk: chunk, bufferSize: 64, maxFields: 100)
            #expect(p.rows == [["a"], wide, ["1"]], "chunk \(chunk)")
            #expect(p.errors == ["line 3 byte 292: more than 100 fields (--max-fields)"], "chunk \(chunk)")
            #expect(p.lines == [1, 2, 5], "chunk \(chunk)")
        }
        let narrow = try parse("1,2,3\n4\n", maxFields: 2)
        #expect(narrow.errors == ["line 1 byte 0: more than 2 fields (--max-fields)"] && narrow.rows == [["4"]])
    }

    @Test func overlongRecordIsReportedNotBuffered() throws {
        let long = String(repeating: "x", count: 5000)
        let p = try parse("a\n\"\(long)\n1\n", bufferSize: 64, maxRecordBytes: 1024)
        #expect(p.errors.count == 1)
        #expect(p.errors.first?.contains("longer than 1024 bytes") == true)
        #expect(p.rows.first == ["a"])
    }

    @Test func rowsAfterAnOverlongRecordInTheSameBlockAreIntact() throws {
        // The unterminated quote runs past the limit; the reader starts again at the line feed
        // after the quote, which is already in its buffer, and must see the rows after it whole.
        let line = String(repeating: "x", count: 100)
        let text = "a,b\n\"" + Array(repeating: line + "," + line, count: 12).joined(separator: "\n") + "\n1,2\n"
        for chunk in [1 << 20, 7] {
            let p = try parse(text, chunk: chunk, bufferSize: 1024, maxRecordBytes: 1024)
            #expect(p.errors.count == 1 && p.errors[0].contains("longer than 1024 bytes"), "\(p.errors)")
            #expect(p.rows.count == 13, "\(p.rows.count)")
            #expect(p.rows.dropFirst().dropLast().allSatisfy { $0.count == 2 && $0[0].count == 100 && $0[1].count == 100 })
            #expect(p.rows.last == ["1", "2"])
        }
    }

    @Test(arguments: [UInt8(44), UInt8(10)])
    func aLongRecordIsParsedAgainOnlyWhenTheBufferHasDoubled(filler: UInt8) throws {
        // 12 MB of delimiters, or of short lines, in a quoted field, read 64 KiB at a time (as
        // from a pipe): the parse of a record starts over at its first byte, so parsing after
        // every read would walk the record about 190 times.
        var field = [UInt8](repeating: 120, count: 12_000_000)
        for i in stride(from: 0, to: field.count, by: filler == 10 ? 71 : 1) { field[i] = filler }
        let bytes = Array("a,b\n1,\"".utf8) + field + Array("\"\n2,3\n".utf8)
        let reader = RecordReader(source: MemorySource(bytes: bytes, chunk: 64 << 10), format: .csv, delimiter: 44,
                                  bufferSize: 1 << 20)
        var rows: [[Int]] = []
        while case .record = try reader.next() { rows.append(reader.row.allFields.map(\.count)) }
        #expect(rows == [[1, 1], [1, 12_000_000], [1, 1]])
        // 1 MiB at first, then about 4 doublings, each filled before parsing on (a line end
        // inside quotes cannot end the record).
        #expect(reader.refills < 30, "\(reader.refills) refills")
    }

    /// A pipe whose writer has sent everything here and waits: reading again would block.
    final class WaitingPipe: ByteSource {
        let source: MemorySource
        var readsWhileWaiting = 0
        init(_ bytes: [UInt8]) { source = MemorySource(bytes: bytes, chunk: 64 << 10) }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let n = try source.read(into: buffer)
            if n == 0 { readsWhileWaiting += 1 }
            return n
        }
        func seek(to offset: Int64) throws { try source.seek(to: offset) }
    }

    @Test func aLongRecordDoesNotWaitForMoreInputThanItNeeds() throws {
        // Past half the buffer, the reader reads on until a line end arrives, not until the
        // buffer is full: a pipe's writer may be waiting for the rows already sent.
        let bytes = Array("h\n".utf8) + [UInt8](repeating: 120, count: 1_500_000) + Array("\nb\n".utf8)
        let pipe = WaitingPipe(bytes)
        let reader = RecordReader(source: pipe, format: .csv, delimiter: 44, bufferSize: 2 << 20)
        var lengths: [Int] = []
        while lengths.count < 3, case .record = try reader.next() { lengths.append(reader.row[0].count) }
        #expect(lengths == [1, 1_500_000, 1])
        #expect(pipe.readsWhileWaiting == 0)
    }

    @Test func runsOfBadRecordsCostTheirLength() throws {
        // Each bad record used to walk the block's list of special bytes from its start.
        var bytes = Array("a,b\n".utf8)
        let line = Array("5\" screen,1\n".utf8)
        for _ in 0..<50_000 { bytes += line }
        let reader = RecordReader(source: MemorySource(bytes: bytes), format: .csv, delimiter: 44, bufferSize: 1 << 20)
        var bad = 0
        loop: while true {
            switch try reader.next() {
            case .record: continue
            case .malformed: bad += 1
            case .end: break loop
            }
        }
        #expect(bad == 50_000)
        // Three entries a line (quote, comma, line feed): skipping them all once is linear.
        // From the block's start each time, it would be over a billion.
        #expect(reader.entriesSkipped <= 3 * 50_000 + 3, "\(reader.entriesSkipped) entries skipped")
    }

    @Test func randomCSVRoundTripsAtAnyChunking() throws {
        // A generated table, written with minimal quoting, must parse back to itself whatever
        // the read sizes.
        var rng = SplitMix(seed: 42)
        let alphabet: [String] = ["a", "b", ",", "\"", "\n", "\r\n", " ", "é", "7", "\t"]
        var table: [[String]] = []
        for _ in 0..<300 {
            table.append((0..<4).map { _ in
                (0..<Int(rng.next() % 6)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
            })
        }
        let text = table.map { row in
            row.map { f in
                f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
                    ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f
            }.joined(separator: ",")
        }.joined(separator: "\n")
        // Rows that are one empty field are written as blank lines here, which are skipped.
        let expected = table.filter { $0 != [""] }
        for (chunk, buffer) in [(1 << 20, 1 << 20), (1, 64), (5, 64), (13, 256)] {
            let p = try parse(text, chunk: chunk, bufferSize: buffer)
            #expect(p.errors.isEmpty)
            #expect(p.rows == expected, "chunk \(chunk)")
        }
    }
}

/// A small deterministic generator for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
