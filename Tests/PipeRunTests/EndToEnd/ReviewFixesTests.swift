import Foundation
import Testing

/// End-to-end: awkward cases found by reviewing the transforms, exec children and many-file
/// jobs.
@Suite(.serialized) struct ReviewFixesTests {
    @Test func copiedRecordsGetMinimalQuotingAndLFLineEnds() throws {
        // Records that are already written as the writer would are copied whole; the others
        // (needless quotes, CRLF) are written field by field.
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\n\"abc\",x\n\"a,b\",y\n\"q\"\"q\",z\n\"\",w\n\"line\nx\",v\r\n\"ok\r\nz\",u\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("out.csv") == "a,b\nabc,x\n\"a,b\",y\n\"q\"\"q\",z\n,w\n\"line\nx\",v\n\"ok\r\nz\",u\n")
    }

    @Test func execChildThatFailsTheHeaderIsADataError() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a\n1\n")
        for command in ["true", "echo notjson", "/nonexistent/program"] {
            let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "exec:\(command)"], in: scratch.url)
            #expect(r.status == 65, "\(command): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("pipe-run: error: exec:"), "\(command): \(r.stderr)")
        }
    }

    @Test func headAfterExecEndsTheJobCleanly() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 2000))
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "exec:cat", "-t", "head:5"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try parse(try scratch.text("out.csv")).rows
        #expect(rows.count == 6)
        let status = try Tool.run(["status", "out.csv"], in: scratch.url)
        #expect(status.stdout.contains("state       complete"), "\(status.stdout)")
    }

    @Test func execChildWithExtraAnswersIsCaught() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a\n1\n2\n3\n")
        try scratch.write("twice.sh", "read h; echo \"$h\"; while read r; do echo \"$r\"; echo \"$r\"; done\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "exec:sh twice.sh"], in: scratch.url)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("more answer lines than it was given rows"), "\(r.stderr)")
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

    @Test func emptyInputGivesEmptyOutput() throws {
        let scratch = try Scratch()
        try scratch.write("empty.csv", "")
        let r = try Tool.run(["run", "empty.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 0)
        #expect(try scratch.read("out.csv").isEmpty)
    }

    @Test func graceDeadlineEndsAStuckExecChild() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a\n1\n2\n")
        let token = "9\(Int.random(in: 100_000...999_999))"
        // The child answers the header, takes the first row (and says so in a file), and never
        // answers it: from then on pipe-run waits for that answer before any checkpoint or end.
        try scratch.write("stuck.sh", "read h; echo '[\"a\"]'; read r; : > took-a-row; exec sleep \(token)\n")
        let running = try Tool.start(["run", "in.csv", "-o", "out.csv", "-t", "exec:sh stuck.sh", "--grace", "1",
                                      "--checkpoint-every", "0.05"], in: scratch.url)
        #expect(try waitUntil(running, "the child took a row") { scratch.exists("took-a-row") })
        running.signal(SIGTERM)
        let r = running.wait()
        #expect(r.status == 75, "\(r.stderr)")
        #expect(r.stderr.contains("grace deadline"), "\(r.stderr)")
        // Look through /proc for the child's command line: it was sent SIGTERM as pipe-run
        // exited, and is gone as soon as it has handled it (a gone child stops the wait; one
        // that outlived pipe-run would sleep for days).
        func child() -> Int32? {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return pids.compactMap { Int32($0) }.first { pid in
                let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains("sleep \(token)")
            }
        }
        let deadline = Date().addingTimeInterval(10)
        while child() != nil && Date() < deadline { usleep(10_000) }
        let alive = child()
        #expect(alive == nil, "the child outlived pipe-run")
        if let alive { kill(alive, SIGKILL) }
    }

    @Test func summaryAndStatusOfAManyFileJobAcrossRuns() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(at: scratch.file("in"), withIntermediateDirectories: true)
        for i in 1...4 { try scratch.write("in/p\(i).csv", Orders.csv(rows: 1500, seed: UInt64(i))) }
        let whole = try Tool.run(["run", "in/p*.csv", "-o", "whole.csv"], in: scratch.url)
        let megabytes = whole.stderr.firstMatch(of: #/([\d.]+) MB in/#).map { String($0.1) }
        #expect(megabytes != nil, "\(whole.stderr)")
        // 6,000 rows of 0.2 ms take 1.2 s at the least, and a slice of 0.3 s stops within a
        // tick (10 ms) and a row of its deadline: at least three runs on any machine.
        let args = ["run", "in/p*.csv", "-o", "sliced.csv", "-t", "delay:0.2", "--max-runtime", "0.3"]
        var last = try Tool.run(args, in: scratch.url)
        var runs = 1
        while last.status == 75 && runs < 40 {
            last = try Tool.run(args, in: scratch.url)
            runs += 1
        }
        #expect(last.status == 0)
        #expect(runs >= 3)
        #expect(last.stderr.contains("\(megabytes ?? "?") MB in"), "\(last.stderr)")
        // The last input changed before its turn and was left out: status names the last file read.
        let skipArgs = ["run", "in/p*.csv", "-o", "skip.csv", "-t", "delay:0.2", "--skip-changed-inputs"]
        // Stopped once rows are read: within about 60 ms, under 300 rows of 0.2 ms, long before p4.
        let stopped = try stopWhen(skipArgs + ["--checkpoint-every", "0.05"], in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        #expect(try #require(readCheckpoint(scratch, "skip.csv.checkpoint")).file < 3)
        try scratch.write("in/p4.csv", "changed\n")
        #expect(try Tool.run(skipArgs, in: scratch.url).status == 0)
        let status = try Tool.run(["status", "skip.csv"], in: scratch.url)
        #expect(status.stdout.contains("input       in/p3.csv (input 3 of 4)"), "\(status.stdout)")
    }
}
