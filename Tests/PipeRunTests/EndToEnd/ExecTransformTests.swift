import Foundation
import Testing

/// End-to-end: `exec:` children that fail, answer too much, get stuck, or are cut short by a
/// transform after them.
@Suite(.serialized) struct ExecTransformTests {
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
}
