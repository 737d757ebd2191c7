import Foundation
import Testing

/// End-to-end: the built binary is killed and signalled at awkward moments, and the finished
/// output must be byte-for-byte the output of one uninterrupted run.
@Suite(.serialized) struct InterruptionTests {
    static let filterJob = ["-t", "filter:status=refunded", "-t", "select:id,city,amount,note"]

    /// Makes the reference output with one uninterrupted run.
    func reference(_ scratch: Scratch, input: String, job: [String], extra: [String] = []) throws -> Data {
        let r = try Tool.run(["run", input, "-o", "reference.out", "--checkpoint-every", "0"] + job + extra, in: scratch.url)
        #expect(r.status == 0, "reference run failed: \(r.stderr)")
        return try scratch.read("reference.out")
    }

    /// Kills runs of `args` at random moments until one finishes, kill k once a run has read
    /// `spread` x k rows; returns how many were killed and how many of those had resumed mid-input.
    func runWithKills(_ args: [String], in scratch: Scratch, seed: UInt64, maxKills: Int,
                      delays: ClosedRange<Int>, spread: Int) throws -> (kills: Int, midResumes: Int) {
        var midResumes = 0
        let kills = try killRepeatedly(args, in: scratch, seed: seed, maxKills: maxKills, delays: delays,
                                       ready: { cp, killed in cp.rowsRead >= killed * spread }) { r in
            if r.stderr.contains("resuming at row") && !r.stderr.contains("resuming at row 0,") { midResumes += 1 }
        }
        return (kills, midResumes)
    }

    @Test func sigkillAtRandomMomentsGivesTheUninterruptedOutput() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 20_000))
        let expected = try reference(scratch, input: "orders.csv", job: Self.filterJob)
        // Each run is killed 0-40 ms after its checkpoint shows it past row 600 x (kills so far)
        // and past where it resumed: at most about 60 ms of rows after that, under 3,000 rows
        // at 0.02 ms a row, on any machine. So the first five kills come before row 20,000, and
        // each killed run after the first resumed mid-input.
        let args = ["run", "orders.csv", "-o", "out.csv", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + Self.filterJob
        let (kills, midResumes) = try runWithKills(args, in: scratch, seed: 1, maxKills: 25, delays: 0...40, spread: 600)
        #expect(try scratch.read("out.csv") == expected)
        #expect(kills >= 5, "only \(kills) runs were killed")
        #expect(midResumes >= 3, "only \(midResumes) runs resumed mid-input")
        // The finished job is complete: a further run touches nothing.
        let again = try Tool.run(args, in: scratch.url)
        #expect(again.status == 0)
        #expect(again.stderr.contains("already complete"))
    }

    @Test func statefulCountByIsExactAfterKills() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 20_000, seed: 11))
        let job = ["-t", "count-by:status,city"]
        let expected = try reference(scratch, input: "orders.csv", job: job)
        // (As above: the first five kills come before the end on any machine.)
        let args = ["run", "orders.csv", "-o", "counts.csv", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + job
        let (kills, midResumes) = try runWithKills(args, in: scratch, seed: 2, maxKills: 20, delays: 0...40, spread: 700)
        #expect(try scratch.read("counts.csv") == expected)
        #expect(kills >= 5)
        #expect(midResumes >= 3)
        // The reference counts add up to the number of rows.
        let total = String(decoding: expected, as: UTF8.self).split(separator: "\n").dropFirst()
            .compactMap { $0.split(separator: ",").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(total == 20_000)
    }

    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func stopSignalCheckpointsAndExits75(_ sig: Int32) throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 3000))
        let expected = try reference(scratch, input: "orders.csv", job: Self.filterJob)
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:0.2", "--checkpoint-every", "0.05",
                    "--events", "events.jsonl"] + Self.filterJob
        // The signal comes once a checkpoint event shows rows read: within about 60 ms, under
        // 300 of the 3,000 rows of 0.2 ms, so the job is still running on any machine.
        let running = try Tool.start(args, in: scratch.url)
        #expect(try signalWhen(running, sig, in: scratch, events: "events.jsonl", "a checkpoint after rows read") { events in
            events.contains { $0["event"] as? String == "checkpoint" && ($0["rowsRead"] as? Int ?? 0) > 0 }
        })
        let r = running.wait()
        #expect(r.status == 75, "\(r.stderr)")
        let interrupted = readEvents(scratch, "events.jsonl").last
        #expect(interrupted?["event"] as? String == "interrupted")
        #expect(interrupted?["reason"] as? String == [SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGHUP: "SIGHUP"][sig])
        #expect(r.stderr.contains("interrupted"))
        #expect(r.stderr.contains("run the same command to resume"))
        #expect(r.stderr.contains(#/at row \d+, byte \d+ of \d+ \(\d+(\.\d+)?%\)/#))
        let checkpoint = try scratch.text("out.csv.checkpoint")
        #expect(checkpoint.contains("\"status\" : \"interrupted\""))
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at row"))
        #expect(try scratch.read("out.csv") == expected)
    }

    @Test func secondSignalExitsAtOnce() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 5))
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:20000", "--grace", "60"]
        let running = try Tool.start(args, in: scratch.url)
        // The signal lands inside the first row (its 20 s sleep under way).
        try #require(try waitUntilInARow(running, in: scratch, checkpoint: "out.csv.checkpoint"))
        running.signal(SIGTERM)
        // Once the handler has taken the signal, a run that exited on it would be gone soon.
        #expect(try waitUntil(running, "SIGTERM taken by its handler") { signalTaken(SIGTERM, by: running.pid) })
        usleep(300_000)
        #expect(running.isRunning, "the first signal waits for the current row")
        let second = Date()
        running.signal(SIGINT)
        let r = running.wait()
        #expect(r.status == 75)
        // At once: not at the end of the row (20 s) or of the grace (60 s).
        #expect(Date().timeIntervalSince(second) < 5)
        #expect(r.stderr.contains("second signal"))
    }

    @Test func graceDeadlineExitsWhileARowIsStuck() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 2))
        let expected = try reference(scratch, input: "orders.csv", job: [])
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:1500", "--grace", "1"]
        let running = try Tool.start(args, in: scratch.url)
        // The signal lands as the first row's sleep starts: the grace second ends well before
        // the row's 1.5 s.
        try #require(try waitUntilInARow(running, in: scratch, checkpoint: "out.csv.checkpoint"))
        running.signal(SIGTERM)
        let signalled = Date()
        let r = running.wait()
        let seconds = Date().timeIntervalSince(signalled)
        #expect(r.status == 75)
        #expect(seconds > 1.0 && seconds < 4, "exited \(seconds) s after the signal")
        #expect(r.stderr.contains("grace deadline"))
        // The previous checkpoint is still valid: the same command finishes the job.
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try scratch.read("out.csv") == expected)
    }

    @Test func maxRuntimeSlicesAJob() throws {
        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 600))
        let expected = try reference(scratch, input: "orders.csv", job: Self.filterJob)
        // 600 rows of 2 ms last 1.2 s at the least, and a slice of 0.15 s stops within a tick
        // (10 ms) and a row of its deadline: at least three slices on any machine.
        let args = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:2", "--max-runtime", "0.15"] + Self.filterJob
        var slices = 0
        while true {
            let r = try Tool.run(args, in: scratch.url)
            if r.status == 0 { break }
            #expect(r.status == 75, "\(r.stderr)")
            #expect(r.stderr.contains("--max-runtime"))
            slices += 1
            if slices > 40 { Issue.record("the job never finished"); return }
        }
        #expect(slices >= 3, "only \(slices) slices")
        #expect(try scratch.read("out.csv") == expected)
    }
}
