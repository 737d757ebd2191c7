import Foundation
import Testing

/// End-to-end: what people living with long jobs see — progress, status, events.
@Suite(.serialized) struct LongJobTests {
    @Test func progressOnATerminalIsALiveLineClearedAtTheEnd() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 3000))
        // `script` gives pipe-run a pseudo-terminal and records what it drew.
        let command = "script -qfec \"'\(Tool.path)' run in.csv -o out.csv -t delay:0.3\" typescript > /dev/null"
        #expect(try shell(command, in: scratch.url) == 0)
        let screen = try scratch.text("typescript")
        #expect(screen.contains("\r\u{1B}[2K"), "the line is redrawn in place")
        #expect(screen.contains(#/\d+\.\d%, \d+ rows read/#), "\(screen.suffix(500))")
        #expect(screen.contains("rows read"))
        #expect(screen.contains("MB/s"))
        #expect(screen.contains("ETA"))
        #expect(screen.contains("\r\u{1B}[2Kpipe-run: done:"), "cleared before the summary")
        #expect(!screen.contains("pipe-run: progress:"), "no log lines on a terminal")
    }

    @Test func progressLogLinesWhenNotOnATerminal() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 2000))
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "delay:0.3", "--progress-every", "0.2"], in: scratch.url)
        #expect(r.status == 0)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("pipe-run: progress: ") }
        #expect(lines.count >= 2, "\(r.stderr)")
        #expect(!r.stderr.contains("\u{1B}"))
        #expect(r.stderr.contains(#/done: 2000 rows read, \d+ written; [\d.]+ MB in \d+s/#), "\(r.stderr)")
        let quiet = try Tool.run(["run", "in.csv", "-o", "q.csv", "--progress", "none", "--progress-every", "0.01"], in: scratch.url)
        #expect(!quiet.stderr.contains("progress:"))
    }

    @Test func statusOfARunningAnInterruptedAKilledAndACompleteJob() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 4000))
        let args = ["run", "in.csv", "-o", "out.csv", "-t", "delay:1", "--checkpoint-every", "0.1"]
        // Each run below is stopped once its checkpoint shows 400 more rows: the 4,000 rows of
        // 1 ms outlast both, however fast the machine.
        let running = try Tool.start(args, in: scratch.url)
        #expect(try waitUntil(running, "400 rows read") {
            guard let cp = readCheckpoint(scratch, "out.csv.checkpoint"), cp.pid == running.pid else { return false }
            return cp.rowsRead >= 400
        })
        let live = try Tool.run(["status", "out.csv"], in: scratch.url)
        #expect(live.status == 0)
        #expect(live.stdout.contains("running (pid \(running.process.processIdentifier))"), "\(live.stdout)")
        #expect(live.stdout.contains("rows read"))
        #expect(live.stdout.contains("rate"))
        let json = try Tool.run(["status", "out.csv", "--json"], in: scratch.url)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(decoded?["state"] as? String == "running")
        #expect((decoded?["rowsRead"] as? Int ?? 0) > 0)
        running.signal(SIGTERM)
        #expect(running.wait().status == 75)
        let stopped = try Tool.run(["status", "--checkpoint", "out.csv.checkpoint"], in: scratch.url)
        #expect(stopped.stdout.contains("interrupted: SIGTERM"), "\(stopped.stdout)")
        #expect(stopped.stdout.contains("1 (1 interruption)"))
        // A SIGKILLed run leaves a checkpoint that says running: status sees that nobody holds it.
        let resumedAt = try #require(readCheckpoint(scratch, "out.csv.checkpoint")).rowsRead
        let killed = try Tool.start(args, in: scratch.url)
        #expect(try signalWhen(killed, SIGKILL, in: scratch, checkpoint: "out.csv.checkpoint", "400 more rows read") {
            $0.rowsRead >= resumedAt + 400
        })
        _ = killed.wait()
        let after = try Tool.run(["status", "out.csv"], in: scratch.url)
        #expect(after.stdout.contains("interrupted: killed"), "\(after.stdout)")
        let done = try Tool.run(args, in: scratch.url)
        #expect(done.status == 0, "\(done.stderr)")
        let complete = try Tool.run(["status", "out.csv"], in: scratch.url)
        #expect(complete.stdout.contains("state       complete"), "\(complete.stdout)")
        #expect(complete.stdout.contains("100.0%"))
        #expect(complete.stdout.contains("3 (1 interruption)"), "\(complete.stdout)")
        let missing = try Tool.run(["status", "nothing.csv"], in: scratch.url)
        #expect(missing.status == 66)
    }

    @Test func eventsAcrossAnInterruption() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\n" + (1...400).map { $0 % 50 == 0 ? "\($0),x\"y\n" : "\($0),ok\n" }.joined())
        // 400 rows of 2 ms take 0.8 s at the least: --max-runtime stops the first run, however
        // fast the machine; and its 0.25 s of rows hold checkpoints at 0.1 and 0.2 s, however slow.
        let args = ["run", "in.csv", "-o", "out.csv", "-t", "delay:2", "--on-error", "skip", "--events", "events.jsonl",
                    "--checkpoint-every", "0.1"]
        #expect(try Tool.run(args + ["--max-runtime", "0.25"], in: scratch.url).status == 75)
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        let events = try scratch.text("events.jsonl").split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let names = events.map { $0["event"] as! String }
        #expect(names.first == "started")
        #expect(names.contains("checkpoint"))
        #expect(names.filter { $0 == "bad-row" }.count == 8, "\(names)")
        let interrupted = events.first { $0["event"] as? String == "interrupted" }
        #expect(interrupted?["reason"] as? String == "--max-runtime")
        let resumedAt = names.firstIndex(of: "resumed") ?? -1
        #expect(resumedAt > names.firstIndex(of: "interrupted") ?? Int.max)
        #expect(names.last == "completed")
        #expect(events.last?["rowsRead"] as? Int == 392)
        #expect(events.last?["badRows"] as? Int == 8)
        let bad = events.first { $0["event"] as? String == "bad-row" }
        #expect(bad?["badLine"] as? Int == 51)
        // A failure is an event too.
        try scratch.write("broken.csv", "a,b\n1,\"open\n")
        let failed = try Tool.run(["run", "broken.csv", "-o", "f.csv", "--events", "f.jsonl"], in: scratch.url)
        #expect(failed.status == 65)
        #expect(try scratch.text("f.jsonl").contains("\"event\":\"failed\""))
    }
}
