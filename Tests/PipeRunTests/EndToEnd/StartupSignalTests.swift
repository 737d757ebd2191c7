import Foundation
import Testing

/// End-to-end: a stop signal in the first milliseconds of a run interrupts the job (status 75,
/// or 0 when it was already complete) instead of killing the process, and the job then
/// finishes exactly.
@Suite(.serialized) struct StartupSignalTests {
    static let job = ["-t", "filter:status=refunded", "-t", "select:id,city,amount,note", "--progress", "none"]

    /// The bits of `field` (`SigBlk`, `SigCgt`, `SigIgn`) in /proc/PID/status, or nil when the
    /// process is gone or a zombie.
    static func signalMask(_ field: String, pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              !text.contains("State:\tZ") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return UInt64(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }

    /// Sends `sig` to a run `delay` after it was started, but not before the program blocks or
    /// catches it (shown by /proc): the dynamic loader runs before any code of ours, and on a
    /// busy or slow machine it alone can take longer than the delay. Returns the run's result.
    static func signal(_ sig: Int32, after delay: Double, _ args: [String], in scratch: Scratch) throws -> Tool.Result {
        let running = try Tool.start(args, in: scratch.url)
        let pid = running.process.processIdentifier
        let bit = UInt64(1) << UInt64(sig - 1)
        let due = running.started.addingTimeInterval(delay)
        while running.isRunning {
            guard let blocked = signalMask("SigBlk", pid: pid), let caught = signalMask("SigCgt", pid: pid) else { break }
            if (blocked | caught) & bit != 0 {
                let wait = due.timeIntervalSinceNow
                if wait > 0 { usleep(UInt32(wait * 1e6)) }
                running.signal(sig)
                break
            }
        }
        return running.wait()
    }

    @Test(arguments: [SIGTERM, SIGHUP, SIGINT])
    func aStopSignalInTheFirstMillisecondsInterruptsTheJob(_ sig: Int32) throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 4000, seed: UInt64(sig)))
        let reference = try Tool.run(["run", "orders.csv", "-o", "reference.csv"] + Self.job, in: scratch.url)
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try scratch.read("reference.csv")
        let args = ["run", "orders.csv", "-o", "out.csv", "--checkpoint-every", "0.001"] + Self.job
        var rng = SplitMix(seed: 40 + UInt64(sig))
        var outcomes: [Int32: Int] = [:]
        for _ in 0..<30 {
            let delay = 0.002 + Double(rng.next() % 8001) / 1e6
            let r = try Self.signal(sig, after: delay, args, in: scratch)
            #expect(!r.signaled, "killed by the signal \(delay * 1000) ms after exec: \(r.stderr)")
            #expect(r.status == 75 || r.status == 0, "exit \(r.status) for a signal \(delay * 1000) ms after exec: \(r.stderr)")
            outcomes[r.status, default: 0] += 1
            if r.status == 0 && !r.stderr.contains("already complete") {
                // Finished before the signal came: the job is exact, and starts over.
                #expect(try scratch.read("out.csv") == expected)
                try FileManager.default.removeItem(at: scratch.file("out.csv"))
                try FileManager.default.removeItem(at: scratch.file("out.csv.checkpoint"))
            }
        }
        let last = try Tool.run(args, in: scratch.url)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try scratch.read("out.csv") == expected)
        #expect(outcomes[75, default: 0] > 0, "no run was interrupted: \(outcomes)")
    }

    /// A shell starts a background job with SIGINT ignored: the job keeps ignoring it, and
    /// still stops at SIGTERM.
    @Test func sigintInheritedAsIgnoredStaysIgnored() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 3000))
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:5", "--checkpoint-every", "0.05"] + Self.job
        let running = try Tool.start(args, in: scratch.url, shellPrefix: "trap '' INT;")
        let pid = running.process.processIdentifier
        let deadline = Date().addingTimeInterval(120)
        // Running the job: its first checkpoint is there.
        while running.isRunning && !scratch.exists("out.csv.checkpoint") && Date() < deadline { usleep(2000) }
        #expect((Self.signalMask("SigIgn", pid: pid) ?? 0) & (1 << (UInt64(SIGINT) - 1)) != 0)
        running.signal(SIGINT)
        // Another checkpoint after the SIGINT shows that the job went on.
        let before = try scratch.text("out.csv.checkpoint")
        while running.isRunning && (try? scratch.text("out.csv.checkpoint")) == before && Date() < deadline { usleep(2000) }
        #expect(running.isRunning)
        running.signal(SIGTERM)
        let r = running.wait()
        #expect(r.status == 75, "\(r.stderr)")
        #expect(r.stderr.contains("interrupted (SIGTERM)"), "\(r.stderr)")
    }
}
