import Foundation
import Testing

/// End-to-end: a run that is refused (changed input, another job, a missing or changed output,
/// a damaged checkpoint, bad options) creates, changes and deletes nothing.
@Suite struct RefusalTests {
    static let job = ["-t", "filter:status=refunded", "-t", "select:id,city,amount,note", "--progress", "none"]

    /// Every file in the directory with its size and modification time (nanoseconds).
    static func snapshot(_ scratch: Scratch) throws -> [String: [Int64]] {
        var files: [String: [Int64]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) where !name.hasPrefix(".std") {
            var st = stat()
            guard stat(scratch.file(name).path, &st) == 0 else { continue }
            files[name] = [Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)]
        }
        return files
    }

    /// Runs `args` and checks that it is refused with `status`, saying `message`, and that the
    /// directory is as it was.
    static func expectRefused(_ args: [String], in scratch: Scratch, status: Int32, saying message: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try snapshot(scratch)
        let r = try Tool.run(args, in: scratch.url)
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(message), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(try snapshot(scratch) == before, "the refused run changed the directory", sourceLocation: sourceLocation)
    }

    /// An interrupted job: slow rows (at least 3 s of them) stopped at its first deadline check.
    static func interruptedJob(_ scratch: Scratch, extra: [String] = []) throws -> [String] {
        try scratch.write("orders.csv", Orders.csv(rows: 3000))
        let args = ["run", "orders.csv", "-o", "out.csv"] + job + extra
        let r = try Tool.run(args + ["-t", "delay:1", "--max-runtime", "0"], in: scratch.url)
        #expect(r.status == 75, "\(r.stderr)")
        return args + ["-t", "delay:1"]
    }

    @Test func outputDeletedUnderAnInterruptedJob() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch)
        try FileManager.default.removeItem(at: scratch.file("out.csv"))
        try Self.expectRefused(args, in: scratch, status: 65, saying: "output out.csv is missing")
    }

    @Test func outputDeletedUnderACompleteJob() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 300))
        let args = ["run", "orders.csv", "-o", "out.csv"] + Self.job
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        try FileManager.default.removeItem(at: scratch.file("out.csv"))
        try Self.expectRefused(args, in: scratch, status: 65, saying: "is missing or has changed")
    }

    @Test func outputChanged() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch)
        try scratch.write("out.csv", "something else entirely\n")
        try Self.expectRefused(args, in: scratch, status: 65, saying: "was modified since the checkpoint")
        try scratch.write("out.csv", "")
        try Self.expectRefused(args, in: scratch, status: 65, saying: "is shorter")
    }

    @Test func quarantineFileDeleted() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch, extra: ["--on-error", "quarantine=bad.csv"])
        try FileManager.default.removeItem(at: scratch.file("bad.csv"))
        try Self.expectRefused(args, in: scratch, status: 65, saying: "quarantine file bad.csv is missing")
    }

    @Test func inputChanged() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch)
        try scratch.write("orders.csv", Orders.csv(rows: 3000, seed: 99))
        try Self.expectRefused(args, in: scratch, status: 65, saying: "changed since the checkpoint")
        try FileManager.default.removeItem(at: scratch.file("orders.csv"))
        try Self.expectRefused(args, in: scratch, status: 66, saying: "orders.csv")
    }

    @Test func anotherJobsCommand() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch)
        try Self.expectRefused(args + ["-t", "head:5"], in: scratch, status: 64, saying: "belongs to a different job")
        // The same with the output gone too: still nothing is created.
        try FileManager.default.removeItem(at: scratch.file("out.csv"))
        try Self.expectRefused(args + ["-t", "head:5"], in: scratch, status: 64, saying: "belongs to a different job")
    }

    @Test func checkpointDamagedOrFromAnotherJob() throws {
        let scratch = try Scratch()
        let args = try Self.interruptedJob(scratch)
        try scratch.write("out.csv.checkpoint", "{ not json")
        try Self.expectRefused(args, in: scratch, status: 65, saying: "is not a pipe-run checkpoint")
        try FileManager.default.removeItem(at: scratch.file("out.csv"))
        try Self.expectRefused(args, in: scratch, status: 65, saying: "is not a pipe-run checkpoint")
        // Another job's checkpoint, copied over this one's.
        try scratch.write("other.csv", Orders.csv(rows: 100, seed: 5))
        let other = ["run", "other.csv", "-o", "other.out", "--progress", "none"]
        #expect(try Tool.run(other, in: scratch.url).status == 0)
        try FileManager.default.copyItem(at: scratch.file("other.out"), to: scratch.file("out.csv"))
        try FileManager.default.removeItem(at: scratch.file("out.csv.checkpoint"))
        try FileManager.default.copyItem(at: scratch.file("other.out.checkpoint"), to: scratch.file("out.csv.checkpoint"))
        try Self.expectRefused(args, in: scratch, status: 64, saying: "belongs to")
    }

    @Test func badOptions() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 100))
        let base = ["run", "orders.csv", "-o", "out.csv.gz", "--progress", "none"]
        try Self.expectRefused(base + ["-t", "no-such-transform"], in: scratch, status: 64, saying: "no-such-transform")
        try Self.expectRefused(base + ["--on-error", "sometimes"], in: scratch, status: 64, saying: "--on-error")
        try Self.expectRefused(base + ["--delimiter", "\""], in: scratch, status: 64, saying: "delimiter")
        try Self.expectRefused(base + ["--compress-level", "12"], in: scratch, status: 64, saying: "--compress-level")
        try Self.expectRefused(base + ["-t", "filter:colour=red"], in: scratch, status: 64, saying: "no column 'colour'")
        // Without a header, the columns are known at the first record only.
        try Self.expectRefused(base + ["--no-header", "-t", "filter:colour=red"], in: scratch, status: 64,
                               saying: "no column 'colour'")
        try Self.expectRefused(base + ["--no-header", "--on-error", "quarantine=q.csv", "-t", "select:12"],
                               in: scratch, status: 64, saying: "12")
        try Self.expectRefused(["run", "missing.csv", "-o", "out.csv"], in: scratch, status: 66, saying: "missing.csv")
    }
}
