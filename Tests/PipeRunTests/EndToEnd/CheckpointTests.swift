import Foundation
import Testing

/// End-to-end: what a resume checks before it touches anything, and what it refuses.
@Suite(.serialized) struct CheckpointTests {
    static let job = ["-t", "filter:status=refunded", "-t", "select:id,city,amount"]

    /// Leaves an interrupted job: a slow run stopped by SIGTERM once a checkpoint shows rows read
    /// (within about 60 ms: under 60 of the 400 rows of 1 ms, on any machine).
    func interruptedJob(_ scratch: Scratch, rows: Int = 400) throws -> [String] {
        try scratch.write("orders.csv", Orders.csv(rows: rows))
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:1", "--checkpoint-every", "0.05"] + Self.job
        let r = try stopWhen(args, in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(r.status == 75, "\(r.stderr)")
        return args
    }

    @Test func completeJobIsNotRunAgain() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 200))
        let args = ["run", "orders.csv", "-o", "out.csv"] + Self.job
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        let before = try scratch.read("out.csv")
        let attributes = try FileManager.default.attributesOfItem(atPath: scratch.file("out.csv").path)
        usleep(20_000)
        let again = try Tool.run(args, in: scratch.url)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already complete"))
        #expect(try scratch.read("out.csv") == before)
        let after = try FileManager.default.attributesOfItem(atPath: scratch.file("out.csv").path)
        #expect(after[.modificationDate] as? Date == attributes[.modificationDate] as? Date)
        // --restart runs it again from the top, with the same result.
        let restarted = try Tool.run(args + ["--restart"], in: scratch.url)
        #expect(restarted.status == 0)
        #expect(restarted.stderr.contains("done:"))
        #expect(try scratch.read("out.csv") == before)
    }

    @Test func changedJobIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        let output = try scratch.read("out.csv")
        let checkpoint = try scratch.read("out.csv.checkpoint")
        var changed = args
        changed[changed.count - 1] = "select:id,amount"
        let r = try Tool.run(changed, in: scratch.url)
        #expect(r.status == 64)
        #expect(r.stderr.contains("different job"))
        #expect(r.stderr.contains("--restart"))
        #expect(try scratch.read("out.csv") == output)
        #expect(try scratch.read("out.csv.checkpoint") == checkpoint)
    }

    @Test func appendedInputIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        let output = try scratch.read("out.csv")
        let handle = try FileHandle(forWritingTo: scratch.file("orders.csv"))
        handle.seekToEndOfFile()
        handle.write(Data("9999,x,Oslo,refunded,1.00,\n".utf8))
        try handle.close()
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("changed since the checkpoint"))
        #expect(r.stderr.contains("size was"))
        #expect(try scratch.read("out.csv") == output)
    }

    @Test func rewrittenInputWithSameSizeAndTimeIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        let path = scratch.file("orders.csv").path
        let mtime = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date
        // Change one byte near the start, in place, and put the modification time back.
        let fd = open(path, O_WRONLY)
        _ = pwrite(fd, "Z", 1, 60)
        close(fd)
        try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: path)
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("first"))
    }

    @Test func replacedInputIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        let copy = try scratch.read("orders.csv")
        try FileManager.default.removeItem(at: scratch.file("orders.csv"))
        try copy.write(to: scratch.file("orders.csv"))
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("replaced") || r.stderr.contains("modified"))
    }

    @Test func modifiedOutputIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        try scratch.write("out.csv", "something else entirely, and long enough to cover the checkpoint\n" + String(repeating: "x", count: 5000))
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("output out.csv was modified"))
    }

    @Test func damagedCheckpointIsRefused() throws {
        let scratch = try Scratch()
        let args = try interruptedJob(scratch)
        try scratch.write("out.csv.checkpoint", "{ \"format\": \"pipe-run checkpoint\", \"version\": 1, \"cursor\": ")
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("damaged"))
    }

    @Test func concurrentRunIsRefused() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 2000))
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:1"] + Self.job
        let first = try Tool.start(args, in: scratch.url)
        // Its first checkpoint is written with the lock held; its 2,000 rows of 1 ms take 2 s at
        // the least, far longer than the refused run.
        #expect(try waitUntil(first, "its first checkpoint") { readCheckpoint(scratch, "out.csv.checkpoint")?.pid == first.pid })
        let second = try Tool.run(args, in: scratch.url)
        #expect(second.status == 75)
        #expect(second.stderr.contains("another pipe-run"))
        #expect(first.isRunning)
        first.signal(SIGTERM)
        #expect(first.wait().status == 75)
        // And the interrupted first run resumes normally.
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at row"))
        let reference = try Tool.run(["run", "orders.csv", "-o", "ref.csv"] + Self.job, in: scratch.url)
        #expect(reference.status == 0)
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
    }

    @Test func movedCheckpointPath() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 100))
        let r = try Tool.run(["run", "orders.csv", "-o", "out.csv", "--checkpoint", "state.json"] + Self.job, in: scratch.url)
        #expect(r.status == 0)
        #expect(scratch.exists("state.json"))
        #expect(!scratch.exists("out.csv.checkpoint"))
    }

    @Test func standardInputAndOutputWorkButAreNotResumable() throws {
        let scratch = try Scratch()
        let data = Orders.csv(rows: 300)
        try scratch.write("orders.csv", data)
        let reference = try Tool.run(["run", "orders.csv", "-o", "ref.csv"] + Self.job, in: scratch.url)
        #expect(reference.status == 0)
        let piped = try Tool.run(["run", "-", "-o", "-"] + Self.job, in: scratch.url, stdin: data)
        #expect(piped.status == 0)
        #expect(piped.stderr.contains("cannot be resumed"))
        #expect(Data(piped.stdout.utf8) == (try scratch.read("ref.csv")))
        #expect(!scratch.exists("-.checkpoint"))
    }

    @Test func closedStandardOutputStopsQuietly() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 50_000))
        let r = try Tool.run([], in: scratch.url, shellPrefix: "set -o pipefail; '\(Tool.path)' run orders.csv -o - | head -n 2 >/dev/null; echo status=$? >&2; exit 0;")
        #expect(r.stderr.contains("status=0"), "\(r.stderr)")
        #expect(!r.stderr.contains("error"))
    }
}
