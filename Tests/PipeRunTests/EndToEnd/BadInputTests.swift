import Foundation
import Testing

/// End-to-end: malformed records, error policies, a full disk, and Python's csv module as an
/// outside oracle for parsing and quoting.
@Suite(.serialized) struct BadInputTests {
    static let good = "id,name,status\n1,a,refunded\n2,\"b, c\",paid\n"
    static let bad = "3,x\"y,refunded\n"
    static let rest = "4,d,refunded\n5,\"e\ne\",refunded\n"

    @Test func malformedRecordFailsWithLineAndOffsetThenResumesWithSkip() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Self.good + Self.bad + Self.rest)
        let args = ["run", "in.csv", "-o", "out.csv", "-t", "filter:status=refunded"]
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        let offset = Self.good.utf8.count
        #expect(r.stderr.contains("in.csv: line 4, byte \(offset + 3): a quote inside an unquoted field"), "\(r.stderr)")
        #expect(r.stderr.contains("3,x\"y,refunded"))
        // What was written before the error is kept, and the checkpoint points at the bad record.
        #expect(try scratch.text("out.csv") == "id,name,status\n1,a,refunded\n")
        let checkpoint = try scratch.text("out.csv.checkpoint")
        #expect(checkpoint.contains("\"status\" : \"failed\""))
        #expect(checkpoint.contains("\"offset\" : \(offset)"))
        // Skipping resumes from that record.
        let skipped = try Tool.run(args + ["--on-error", "skip"], in: scratch.url)
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("resuming at row 2"))
        #expect(skipped.stderr.contains("1 bad rows skipped"))
        #expect(try scratch.text("out.csv") == "id,name,status\n1,a,refunded\n4,d,refunded\n5,\"e\ne\",refunded\n")
    }

    @Test func fixingTheInputAfterTheBadRecordResumes() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Self.good + Self.bad + Self.rest)
        let args = ["run", "in.csv", "-o", "out.csv"]
        #expect(try Tool.run(args, in: scratch.url).status == 65)
        try scratch.write("in.csv", Self.good + "3,xy,refunded\n" + Self.rest)
        let fixed = try Tool.run(args, in: scratch.url)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(try scratch.text("out.csv") == Self.good + "3,xy,refunded\n" + Self.rest)
    }

    @Test func quarantineKeepsBadRecordsWithLineAndOffset() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Self.good + Self.bad + Self.rest + "6,too,many,fields\n\"7,open\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "--on-error", "quarantine=bad.csv"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("3 bad rows quarantined"))
        #expect(try scratch.text("out.csv") == Self.good + Self.rest)
        let lines = try scratch.text("bad.csv")
        #expect(lines.hasPrefix("line,offset,reason,record\n"))
        #expect(lines.contains("4,\(Self.good.utf8.count),a quote inside an unquoted field,\"3,x\"\"y,refunded\"\n"))
        #expect(lines.contains("expected 3 fields, found 4"))
        #expect(lines.contains("unterminated quoted field"))
    }

    @Test(arguments: [
        ("a,b\n1,\"unterminated\n", "line 2, byte 6: unterminated quoted field"),
        ("a,b\n1,2,3\n", "line 2, byte 4: expected 2 fields, found 3"),
        ("a,b\n\"1\"x,2\n", "line 2, byte 7: unexpected character after a closing quote"),
    ])
    func malformedInputsNameLineAndOffset(_ input: String, _ message: String) throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", input)
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("in.csv: \(message)"), "\(r.stderr)")
    }

    @Test func recordsWithTooManyFieldsAreBadRecordsAndTheLimitIsPartOfTheJob() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\n1,2\n" + String(repeating: ",", count: 300_000) + "\n3,4\n")
        let args = ["run", "in.csv", "-o", "out.csv", "--flexible", "--max-fields", "1000"]
        let failed = try Tool.run(args, in: scratch.url)
        #expect(failed.status == 65)
        #expect(failed.stderr.contains("in.csv: line 3, byte 8: more than 1000 fields (--max-fields)"), "\(failed.stderr)")
        #expect(try scratch.text("out.csv") == "a,b\n1,2\n")
        let changed = try Tool.run(args.dropLast() + ["2000", "--on-error", "skip"], in: scratch.url)
        #expect(changed.status == 64 && changed.stderr.contains("--max-fields was 1000, now 2000"), "\(changed.stderr)")
        let skipped = try Tool.run(args + ["--on-error", "skip"], in: scratch.url)
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(try scratch.text("out.csv") == "a,b\n1,2\n3,4\n")
        // The default limit (a million) lets this record through.
        #expect(try Tool.run(["run", "in.csv", "-o", "all.csv", "--flexible"], in: scratch.url).status == 0)
    }

    @Test func flexibleAcceptsRaggedRows() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b,c\n1,2\n3,4,5,6\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "--flexible", "-t", "select:c,a"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("out.csv") == "c,a\n,1\n5,3\n")
    }

    @Test func usageErrors() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\n1,2\n")
        let cases: [[String]] = [
            ["-t", "select:nope"], ["-t", "bogus:1"], ["-t", "filter:a"], ["-t", "filter:a~("],
            ["-t", "filter:a>x"], ["--on-error", "explode"], ["--delimiter", "\""],
        ]
        for extra in cases {
            let r = try Tool.run(["run", "in.csv", "-o", "out.csv"] + extra, in: scratch.url)
            #expect(r.status == 64, "\(extra): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("error"), "\(extra)")
        }
        let missing = try Tool.run(["run", "nope.csv", "-o", "out.csv"], in: scratch.url)
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("nope.csv"))
        let noDir = try Tool.run(["run", "in.csv", "-o", "no/such/dir/out.csv"], in: scratch.url)
        #expect(noDir.status == 73)
    }

    @Test func fileSizeLimitGivesExit74AndAResumableCheckpoint() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 20_000))
        let args = ["run", "orders.csv", "-o", "out.csv", "--checkpoint-every", "0.001"]
        #expect(try Tool.run(["run", "orders.csv", "-o", "ref.csv"], in: scratch.url).status == 0)
        // bash's ulimit -f counts KiB: the output may not grow past 256 KiB.
        let limited = try Tool.run(args, in: scratch.url, shellPrefix: "ulimit -f 256;")
        #expect(limited.status == 74, "\(limited.stderr)")
        #expect(limited.stderr.contains("out.csv"))
        #expect(limited.stderr.contains("too large") || limited.stderr.contains("No space"), "\(limited.stderr)")
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at row"))
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
    }

    @Test(arguments: [false, true])
    func aQuarantineFileThatCannotGrowFailsTheJob(fromStandardInput: Bool) throws {
        // Every other row is bad; the quarantine file outgrows the limit (with less than a
        // write-behind block: written only at the end), the output does not.
        let scratch = try Scratch()
        var text = "a,b\n"
        for i in 0..<12_000 { text += i % 2 == 0 ? "\(i),ok\n" : "\(i),bad\"quote,x\n" }
        try scratch.write("in.csv", text)
        let input = fromStandardInput ? "-" : "in.csv"
        let limited = try Tool.run(["run", input, "-o", "out.csv", "--on-error", "quarantine=bad.csv"], in: scratch.url,
                                   shellPrefix: "ulimit -f 256;" + (fromStandardInput ? " exec < in.csv;" : ""))
        #expect(limited.status == 74, "\(limited.stderr)")
        #expect(limited.stderr.contains("bad.csv"), "\(limited.stderr)")
        #expect(!limited.stderr.contains("quarantined"), "\(limited.stderr)")
    }

    static let python: String? = ["/usr/bin/python3", "/usr/local/bin/python3"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    } ?? ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
        .map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Random fields (quotes, CRLF, lone CRs, other delimiters, UTF-8) in a file larger than a
    /// read-ahead block, plain or gzip, with a comma, a semicolon or a tab between fields; and
    /// with a few huge fields (longer than the room in front of a block, and than a block).
    @Test(.enabled(if: python != nil, "python3 is the outside oracle"),
          arguments: [(",", false, false), (";", true, false), ("\t", false, false), ("\t", true, false),
                      (",", false, true), (";", true, true)])
    func parsingAndQuotingMatchPythonsCSVModule(_ delimiter: String, _ gzip: Bool, _ huge: Bool) throws {
        let scratch = try Scratch()
        var rng = SplitMix(seed: 99)
        let pieces = ["a", "Zoë", ",", "\"", "\n", "\r\n", " ", "x y", "1.5", "\t", "\r", ";", "語"]
        let d = Character(delimiter)
        var text = "\u{FEFF}" + ["c1", "c2", "c3", "c4"].joined(separator: delimiter) + "\r\n"
        let rows = 40_000
        for i in 0..<rows {
            var fields: [String] = []
            for column in 0..<4 {
                var value = (0..<Int(rng.next() % 5)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
                if huge && column == 2 && i % 4000 == 1 {
                    // 70 KB to 3 MB, with quotes and line ends inside.
                    let size = [70_000, 300_000, 1_500_000, 3_000_000][(i / 4000) % 4]
                    value = String(repeating: "long \"text\"\n" + delimiter, count: size / 14)
                }
                let special = value.contains { $0 == d || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
                let quote = special || rng.next() % 10 == 0
                fields.append(quote ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value)
            }
            text += fields.joined(separator: delimiter) + (i % 7 == 0 ? "\r\n" : "\n")
        }
        try scratch.write("in.csv", text)
        var input = "in.csv"
        if gzip {
            #expect(try shell("gzip -c in.csv > in.csv.gz", in: scratch.url) == 0)
            input = "in.csv.gz"
        }
        let r = try Tool.run(["run", input, "-o", "out.csv", "--delimiter", delimiter], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        // Python reads the input and pipe-run's output; the rows must be the same. (Bytes may
        // differ: Python leaves a field holding a lone CR unquoted when lines end in LF, which
        // pipe-run quotes, as RFC 4180 asks.)
        let script = """
            import csv, sys
            d = sys.argv[3]
            csv.field_size_limit(1 << 30)
            def rows(path, enc):
                with open(path, newline='', encoding=enc) as f:
                    return [r for r in csv.reader(f, delimiter=d, strict=True) if r]
            a = rows(sys.argv[1], 'utf-8-sig'); b = rows(sys.argv[2], 'utf-8')
            if a != b:
                i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                print(f"row {i}: input {a[i:i+1]} output {b[i:i+1]}; {len(a)} vs {len(b)} rows")
                sys.exit(1)
            print(f"{len(a)} rows agree")
            """
        try scratch.write("oracle.py", script)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python!)
        p.arguments = [scratch.file("oracle.py").path, scratch.file("in.csv").path, scratch.file("out.csv").path, delimiter]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let said = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(said)")
        #expect(said.contains("\(rows + 1) rows agree"), "\(said)")
    }
}
