import Testing
@testable import PipeRun

/// Records parsed ahead on the read-ahead thread (``BlockParser``) must be exactly what the
/// reader parses itself: fields, offsets, lines, verbatim flags and errors.
@Suite struct ParseAheadTests {
    struct Seen: Equatable {
        var fields: [[UInt8]]
        var raw: [UInt8]
        var offset: Int64
        var line: Int64
        var verbatim: Bool
    }

    /// Everything a reader returns, and how many records it took as parsed ahead.
    func read(_ reader: RecordReader) throws -> (seen: [Seen], errors: [String], parsedAhead: Int) {
        var seen: [Seen] = []
        var errors: [String] = []
        loop: while true {
            switch try reader.next() {
            case .record:
                let row = reader.row
                seen.append(Seen(fields: row.allFields.map { Array($0.bytes) }, raw: Array(row.raw!),
                                 offset: row.offset, line: row.line, verbatim: row.isVerbatim))
            case .malformed(let bad):
                errors.append("line \(bad.line) at \(bad.offset)/\(bad.errorOffset): \(bad.reason) [\(bad.raw.count)]")
            case .end:
                break loop
            }
        }
        return (seen, errors, reader.recordsParsedAhead)
    }

    /// Random CSV: plain and quoted fields (with delimiters, `""`, LF, CR and CRLF inside),
    /// LF, CRLF and lone-CR line ends, blank lines, some long fields and, when `malformed`,
    /// stray quotes and bytes after closing quotes.
    func generate(seed: UInt64, records: Int, delimiter: UInt8, malformed: Bool) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        let plain = Array("abcxyz019 ".utf8) + [0xC3, 0xA9]
        var out: [UInt8] = []
        for _ in 0..<records {
            if pick(40) == 0 {
                out.append(10)
                continue
            }
            let fields = 1 + pick(5)
            for f in 0..<fields {
                if f > 0 { out.append(delimiter) }
                let length = pick(60) == 0 ? 500 + pick(6000) : pick(12)
                if pick(5) == 0 {
                    out.append(34)
                    for _ in 0..<length {
                        switch pick(12) {
                        case 0: out.append(delimiter)
                        case 1: out += [34, 34]
                        case 2: out.append(10)
                        case 3: out.append(13)
                        case 4: out += [13, 10]
                        default: out.append(plain[pick(plain.count)])
                        }
                    }
                    out.append(34)
                    if malformed && pick(80) == 0 { out.append(Array("x".utf8)[0]) }
                } else {
                    for _ in 0..<length { out.append(plain[pick(plain.count)]) }
                    if malformed && pick(80) == 0 { out += [34, 97] }
                }
            }
            switch pick(10) {
            case 0: out += [13, 10]
            case 1: out.append(13)
            default: out.append(10)
            }
        }
        return out
    }

    @Test func theCParserWritesFieldsAsSwiftLaysThemOut() {
        // Else parsing ahead is off (and the tests below would fail).
        #expect(BlockParser.fieldsMatchC)
    }

    /// Reads CSV `text` with a field limit twice: from memory by the reader alone, and through
    /// small read-ahead blocks that are always parsed ahead.
    func readBothWays(_ text: String, maxFields: Int, blockSize: Int)
        throws -> (expected: (seen: [Seen], errors: [String], parsedAhead: Int), got: (seen: [Seen], errors: [String], parsedAhead: Int)) {
        let bytes = Array(text.utf8)
        let plain = RecordReader(source: MemorySource(bytes: bytes), format: .csv, delimiter: 44,
                                 bufferSize: 1 << 20, maxRecordBytes: 1 << 20, maxFields: maxFields)
        let ahead = ReadAheadSource(wrapping: MemorySource(bytes: bytes, chunk: 1000), chunkSize: blockSize, depth: 3,
                                    headroom: 4096, indexing: 44, shouldStop: { false })
        ahead.parsesRecords = .always
        defer { ahead.stop() }
        let reader = RecordReader(source: ahead, format: .csv, delimiter: 44, bufferSize: 1 << 20,
                                  maxRecordBytes: 1 << 20, maxFields: maxFields)
        return (try read(plain), try read(reader))
    }

    @Test func recordsParsedAheadWithTooManyFieldsAreLeftToTheReader() throws {
        // Records of 3 fields and a few of 6; with a limit of 4 the long ones are bad either way.
        var text = "a,b,c\n"
        for i in 0..<20_000 { text += i % 2000 == 3 ? "\(i),x,y,z,\"w,\",v\n" : "\(i),\"p\nq\",r\n" }
        let (expected, got) = try readBothWays(text, maxFields: 4, blockSize: 8192)
        #expect(got.seen == expected.seen)
        #expect(got.errors == expected.errors)
        #expect(expected.errors.count == 10 && expected.errors.allSatisfy { $0.contains("more than 4 fields") })
        #expect(got.parsedAhead > 8_000, "\(got.parsedAhead)")
    }

    @Test func aRecordTooWideAndMalformedDoesNotTaintTheNextRecordParsedAhead() throws {
        // `1,2,3,x"y` is too wide for a limit of 2 and then bad (a quote inside a field): it is
        // reported for its quote, and the good records after it, parsed ahead or not, are good.
        var text = ""
        for i in 0..<30_000 { text += i % 37 == 5 ? "1,2,3,x\"y\n" : "\(i),z\n" }
        let (expected, got) = try readBothWays(text, maxFields: 2, blockSize: 4096)
        #expect(expected.errors.count == 811 && expected.errors.allSatisfy { $0.contains("a quote inside an unquoted field") })
        #expect(got.errors == expected.errors)
        #expect(got.seen == expected.seen)
        #expect(got.parsedAhead > 1_000, "\(got.parsedAhead)")
    }

    @Test(arguments: [(UInt8(44), false), (UInt8(44), true), (UInt8(9), false), (UInt8(59), true)])
    func parsedAheadEqualsParsedByTheReader(delimiter: UInt8, malformed: Bool) throws {
        let format: RecordFormat = delimiter == 9 ? .tsv : .csv
        for seed in UInt64(1)...3 {
            let bytes = generate(seed: seed &* 7 &+ UInt64(delimiter), records: 6000, delimiter: delimiter,
                                 malformed: malformed)
            let plain = RecordReader(source: MemorySource(bytes: bytes), format: format, delimiter: delimiter,
                                     bufferSize: 1 << 20, maxRecordBytes: 1 << 20)
            // Small blocks, so that records cross blocks and some are longer than the room in
            // front of a block.
            let ahead = ReadAheadSource(wrapping: MemorySource(bytes: bytes, chunk: 1000), chunkSize: 8192, depth: 3,
                                        headroom: 4096, indexing: delimiter, shouldStop: { false })
            ahead.parsesRecords = .always
            let reader = RecordReader(source: ahead, format: format, delimiter: delimiter, bufferSize: 1 << 20,
                                      maxRecordBytes: 1 << 20)
            for r in [plain, reader] { r.expectedFields = seed == 2 ? 3 : nil }
            let expected = try read(plain)
            let got = try read(reader)
            ahead.stop()
            #expect(got.seen.count == expected.seen.count, "seed \(seed)")
            if let i = zip(got.seen, expected.seen).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("seed \(seed): record \(i) differs: \(got.seen[i]) against \(expected.seen[i])")
            }
            #expect(got.errors.count == expected.errors.count, "seed \(seed)")
            if let i = zip(got.errors, expected.errors).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("seed \(seed): error \(i) differs: \(got.errors[i]) against \(expected.errors[i])")
            }
            #expect(malformed || seed == 2 ? !expected.errors.isEmpty : expected.errors.isEmpty)
            // Most records come from the read-ahead thread (all but the first of each block,
            // and those after a malformed one).
            let total = expected.seen.count + expected.errors.count
            #expect(malformed || got.parsedAhead * 2 > total, "seed \(seed): \(got.parsedAhead) of \(total) parsed ahead")
        }
    }

    @Test func aBlockThatStartsInsideAQuotedFieldIsParsedFromItsFirstRecord() throws {
        // Quoted fields with line ends span every block boundary: a guess that ignored the
        // quotes before the block would start at a line end inside a field.
        var text: [UInt8] = []
        var n = 0
        while text.count < 100_000 {
            text += Array("\(n),\"multi\nline \(n)\n,\",end\n".utf8)
            n += 1
        }
        let ahead = ReadAheadSource(wrapping: MemorySource(bytes: text), chunkSize: 4096, depth: 3, headroom: 4096,
                                    indexing: 44, shouldStop: { false })
        ahead.parsesRecords = .always
        let reader = RecordReader(source: ahead, format: .csv, delimiter: 44, bufferSize: 1 << 20)
        let got = try read(reader)
        ahead.stop()
        #expect(got.errors.isEmpty)
        #expect(got.seen.count == n)
        #expect(got.seen.enumerated().allSatisfy { i, record in
            record.fields == [Array("\(i)".utf8), Array("multi\nline \(i)\n,".utf8), Array("end".utf8)]
                && record.line == Int64(3 * i + 1)
        })
        #expect(got.parsedAhead > n * 3 / 4, "\(got.parsedAhead) of \(n)")
    }

    @Test func aStrayQuoteDoesNotTurnParsingAheadOff() throws {
        // One quote inside an unquoted field makes the count of quotes before every later block
        // odd: the guesses are then tried the other way.
        var text = Array("id,name,note\n".utf8)
        for i in 0..<20_000 {
            text += Array("\(i),\"Smith, Jo\",plain\n".utf8)
            if i == 500 { text += Array("7,ab\"c,x\n".utf8) }
        }
        let plain = RecordReader(source: MemorySource(bytes: text), format: .csv, delimiter: 44, bufferSize: 1 << 20)
        let ahead = ReadAheadSource(wrapping: MemorySource(bytes: text), chunkSize: 8192, depth: 3, headroom: 4096,
                                    indexing: 44, shouldStop: { false })
        ahead.parsesRecords = .always
        let reader = RecordReader(source: ahead, format: .csv, delimiter: 44, bufferSize: 1 << 20)
        let expected = try read(plain)
        let got = try read(reader)
        ahead.stop()
        #expect(got.seen == expected.seen)
        #expect(got.errors == expected.errors)
        #expect(expected.errors.count == 1)
        #expect(got.parsedAhead > 15_000, "\(got.parsedAhead) of 20,001 parsed ahead")
    }
}
