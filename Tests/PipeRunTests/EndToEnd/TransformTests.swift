import Foundation
import Testing

/// End-to-end: the built-in transforms, exec children, and transform errors under --on-error.
@Suite(.serialized) struct TransformTests {
    static let log = """
        1.2.3.4 - - [01/Mar/2024:00:00:00 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8"
        5.6.7.8 - bob [01/Mar/2024:00:00:01 +0000] "POST /b?q=\\"x\\" HTTP/1.1" 500 0 "https://r/" "Mozilla/5.0 (X11)"
        9.9.9.9 - - [01/Mar/2024:00:00:02 +0000] "GET /c HTTP/1.1" 404 12 "-" "bot"

        """

    func run(_ args: [String], _ scratch: Scratch) throws -> Tool.Result {
        try Tool.run(["run"] + args, in: scratch.url)
    }

    @Test func renameReplaceGrepSplitSample() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "id,email,note\n1,ann@example.com,\"a, b\"\n2,bob@test.org,x\n3,cy@example.com,y\n")
        var r = try run(["in.csv", "-o", "a.csv", "-t", "rename:email=mail,id=key", "-t", #"replace:mail/^([^@]*)@(.*)$/\2 (\1)"#], scratch)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("a.csv") == "key,mail,note\n1,example.com (ann),\"a, b\"\n2,test.org (bob),x\n3,example.com (cy),y\n")
        r = try run(["in.csv", "-o", "b.csv", "-t", "grep:\"a, b\"|test\\.org"], scratch)
        #expect(try scratch.text("b.csv") == "id,email,note\n1,ann@example.com,\"a, b\"\n2,bob@test.org,x\n")
        r = try run(["in.csv", "-o", "c.csv", "-t", "replace:note/[aeiouy]/*"], scratch)
        #expect(try scratch.text("c.csv") == "id,email,note\n1,ann@example.com,\"*, b\"\n2,bob@test.org,x\n3,cy@example.com,*\n")

        try scratch.write("access.log", Self.log)
        r = try run(["access.log", "-o", "d.csv", "--format", "lines", "-t", "split:combined", "-t", "select:ip,status,request,agent"], scratch)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("d.csv") == """
            ip,status,request,agent
            1.2.3.4,200,GET /a HTTP/1.1,curl/8
            5.6.7.8,500,"POST /b?q=\\""x\\"" HTTP/1.1",Mozilla/5.0 (X11)
            9.9.9.9,404,GET /c HTTP/1.1,bot

            """)
        r = try run(["access.log", "-o", "e.csv", "--format", "lines", "-t", "split:space:3"], scratch)
        let split = try scratch.text("e.csv")
        #expect(split.hasPrefix("1,2,3\n1.2.3.4,-,\"- [01/Mar/2024:00:00:00 +0000] \"\"GET /a"), "\(split)")

        // sample is deterministic: same rows for the same seed, whatever happens in between.
        try scratch.write("many.csv", Orders.csv(rows: 5000))
        r = try run(["many.csv", "-o", "s1.csv", "-t", "sample:0.1:7"], scratch)
        let kept = try scratch.text("s1.csv").split(separator: "\n").count - 1
        #expect(kept > 300 && kept < 700, "kept \(kept) of 5000")
        // 5,000 rows of 0.1 ms take 0.5 s at the least; a slice of 0.1 s stops within a tick
        // (10 ms) and a row: at least two slices on any machine.
        let sliced = ["many.csv", "-o", "s2.csv", "-t", "delay:0.1", "-t", "sample:0.1:7", "--max-runtime", "0.1"]
        var slices = 0
        while try run(sliced, scratch).status == 75 { slices += 1; if slices > 50 { break } }
        #expect(slices >= 2)
        #expect(try scratch.read("s2.csv") == scratch.read("s1.csv"))
    }

    @Test func headStopsTheJobAndStaysExactAcrossResumes() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 20_000))
        let r = try run(["in.csv", "-o", "ref.csv", "-t", "filter:status=refunded", "-t", "head:700"], scratch)
        #expect(r.status == 0)
        #expect(r.stderr.contains("written"))
        #expect(try scratch.text("ref.csv").split(separator: "\n", omittingEmptySubsequences: false).count > 700)
        // The 700th refunded row is about row 2,100: of 0.6 ms, 1.2 s at the least, against
        // slices of 0.3 s (and a tick and a row): at least two slices on any machine.
        let args = ["in.csv", "-o", "out.csv", "-t", "delay:0.6", "-t", "filter:status=refunded", "-t", "head:700",
                    "--max-runtime", "0.3"]
        var slices = 0
        while try run(args, scratch).status == 75 { slices += 1; if slices > 60 { break } }
        #expect(slices >= 2)
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
        let again = try run(args, scratch)
        #expect(again.stderr.contains("already complete"))
    }

    @Test func dedupeIsExactAcrossResumes() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 6000))
        #expect(try run(["in.csv", "-o", "ref.csv", "-t", "dedupe:status,city"], scratch).status == 0)
        let expected = try scratch.text("ref.csv")
        let lines = expected.split(separator: "\n").count     // 5 statuses x 6 cities, some notes span lines
        #expect(lines > 25 && lines < 45, "\(lines) lines")
        // 6,000 rows of 0.1 ms take 0.6 s at the least: at least two slices of 0.1 s on any machine.
        let args = ["in.csv", "-o", "out.csv", "-t", "delay:0.1", "-t", "dedupe:status,city", "--max-runtime", "0.1"]
        var slices = 0
        while try run(args, scratch).status == 75 { slices += 1; if slices > 60 { break } }
        #expect(slices >= 2)
        #expect(try scratch.text("out.csv") == expected)
    }

    /// A checkpoint written before states could be binary (format version 1, count-by's counts as
    /// JSON) still resumes to the exact result. The old state is made by counting the input
    /// before the cursor with a job of its own.
    @Test func aCheckpointOfTheFirstFormatStillResumes() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 3000))
        #expect(try run(["in.csv", "-o", "ref.csv", "-t", "count-by:status"], scratch).status == 0)
        let args = ["in.csv", "-o", "out.csv", "-t", "delay:0.2", "-t", "count-by:status", "--checkpoint-every", "0.05"]
        // Stopped once the cursor is past byte 1,000: within about 60 ms more, under 300 of the
        // 3,000 rows of 0.2 ms, on any machine.
        let stopped = try stopWhen(["run"] + args, in: scratch, "a cursor past byte 1000") { $0.offset > 1000 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        var checkpoint = try #require(try JSONSerialization.jsonObject(with: scratch.read("out.csv.checkpoint")) as? [String: Any])
        let cursor = try #require(checkpoint["cursor"] as? [String: Any])
        let offset = try #require(cursor["offset"] as? Int)
        #expect(offset > 1000)
        try scratch.write("before.csv", String(decoding: try scratch.read("in.csv").prefix(offset), as: UTF8.self))
        #expect(try run(["before.csv", "-o", "before-counts.csv", "-t", "count-by:status"], scratch).status == 0)
        let counted = try scratch.text("before-counts.csv").split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        let keys = counted.map { "[\"\($0[0])\"]" }.joined(separator: ",")
        let counts = counted.map { String($0[1]) }.joined(separator: ",")
        checkpoint["version"] = 1
        checkpoint["transformStates"] = [NSNull(), "{\"counts\":[\(counts)],\"keys\":[\(keys)]}"]
        try scratch.write("out.csv.checkpoint", String(decoding: try JSONSerialization.data(withJSONObject: checkpoint), as: UTF8.self))
        let resumed = try run(args, scratch)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try scratch.text("out.csv") == scratch.text("ref.csv"))
        #expect(try scratch.text("out.csv.checkpoint").contains("\"version\" : 2"))
    }

    @Test func transformErrorsFollowTheErrorPolicy() throws {
        let scratch = try Scratch()
        try scratch.write("access.log", Self.log + "not a log line\n" + Self.log)
        let base = ["access.log", "--format", "lines", "-t", "split:combined", "-t", "select:status"]
        let failed = try run(base + ["-o", "f.csv"], scratch)
        #expect(failed.status == 65)
        #expect(failed.stderr.contains("access.log: line 4, byte \(Self.log.utf8.count)"), "\(failed.stderr)")
        #expect(failed.stderr.contains("not a combined access-log line"))
        let skipped = try run(base + ["-o", "s.csv", "--on-error", "skip"], scratch)
        #expect(skipped.status == 0)
        #expect(try scratch.text("s.csv") == "200\n500\n404\n200\n500\n404\n")   // one column of lines: no header
        let kept = try run(base + ["-o", "q.csv", "--on-error", "quarantine=bad.csv"], scratch)
        #expect(kept.status == 0)
        #expect(try scratch.text("bad.csv").contains("4,\(Self.log.utf8.count),transform failed: split: not a combined access-log line,not a log line\n"))
    }

    static let python = BadInputTests.python

    @Test(.enabled(if: python != nil, "needs python3"))
    func execRoundTripsRowsAndResumes() throws {
        let scratch = try Scratch()
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("samples/exec/city_upper.py").path
        try scratch.write("in.csv", Orders.csv(rows: 3000))
        let job = ["-t", "exec:\(Self.python!) \(sample)"]
        let whole = try run(["in.csv", "-o", "ref.csv"] + job, scratch)
        #expect(whole.status == 0, "\(whole.stderr)")
        // Every row survives the round trip (quoted newlines, quotes, UTF-8), with the new column.
        let check = """
            import csv, sys
            a = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))
            b = list(csv.reader(open(sys.argv[2], newline='', encoding='utf-8')))
            city = a[0].index('city')
            want = [a[0] + ['city_upper']] + [r + [r[city].upper()] for r in a[1:] if r[city]]
            sys.exit(0 if want == b else 1)
            """
        try scratch.write("check.py", check)
        #expect(try shell("'\(Self.python!)' check.py in.csv ref.csv", in: scratch.url) == 0)
        // Interrupted again and again, then resumed: the same output.
        // 3,000 rows of 0.3 ms take 0.9 s at the least; a slice of 0.2 s stops within a tick
        // (10 ms) and a row of its deadline: at least two slices on any machine.
        let args = ["in.csv", "-o", "out.csv", "-t", "delay:0.3"] + job + ["--max-runtime", "0.2", "--checkpoint-every", "0.05"]
        var slices = 0
        while true {
            let r = try run(args, scratch)
            if r.status == 0 { break }
            #expect(r.status == 75, "\(r.stderr)")
            slices += 1
            if slices > 60 { Issue.record("never finished"); break }
        }
        #expect(slices >= 2)
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
    }

    @Test func execChildThatDiesOrBabblesStopsTheJobWithTheRow() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a\n1\n2\n3\n")
        // Answers the header and one row, then exits.
        try scratch.write("dies.sh", "read h; echo '[\"a\"]'; read r; echo \"$r\"; exit 3\n")
        let died = try run(["in.csv", "-o", "d.csv", "-t", "exec:sh dies.sh"], scratch)
        #expect(died.status == 65, "\(died.stderr)")
        #expect(died.stderr.contains("exited with status 3 before answering the row at line 3, byte 4"), "\(died.stderr)")
        #expect(try scratch.text("d.csv") == "a\n", "nothing past the last checkpoint is kept")
        try scratch.write("babbles.sh", "read h; echo '[\"a\"]'; while read r; do echo 'hello'; done\n")
        let babbled = try run(["in.csv", "-o", "b.csv", "-t", "exec:sh babbles.sh"], scratch)
        #expect(babbled.status == 65)
        #expect(babbled.stderr.contains("answered the row at line 2, byte 2 with something that is not a JSON array: hello"), "\(babbled.stderr)")
        // A child that drops everything but row 2.
        try scratch.write("picky.sh", "read h; echo '[\"n\"]'; while read r; do if [ \"$r\" = '[\"2\"]' ]; then echo '[2]'; else echo; fi; done\n")
        let picky = try run(["in.csv", "-o", "p.csv", "-t", "exec:sh picky.sh"], scratch)
        #expect(picky.status == 0, "\(picky.stderr)")
        #expect(try scratch.text("p.csv") == "n\n2\n")
    }

    @Test func grepMatchesAtTheEndOfALine() throws {
        let scratch = try Scratch()
        try scratch.write("g.log", "GET 500\r\nGET 200\nPOST 500")
        #expect(try Tool.run(["run", "g.log", "-o", "g.out", "--format", "lines", "-t", "grep:500$"], in: scratch.url).status == 0)
        #expect(try scratch.text("g.out") == "GET 500\nPOST 500\n")
        try scratch.write("g.csv", "a,b\nx,500\ny,5000\n")
        #expect(try Tool.run(["run", "g.csv", "-o", "c.out", "-t", "grep:,500$"], in: scratch.url).status == 0)
        #expect(try scratch.text("c.out") == "a,b\nx,500\n")
    }

    @Test func replaceEveryMatchInALongField() throws {
        let scratch = try Scratch()
        let n = 50_000
        try scratch.write("in.csv", "a,b\n" + String(repeating: "x", count: n) + ",1\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "replace:a/x/yz"], in: scratch.url)
        #expect(r.status == 0)
        #expect(try scratch.text("out.csv") == "a,b\n" + String(repeating: "yz", count: n) + ",1\n")
    }
}
