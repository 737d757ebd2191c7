import Foundation
@testable import PipeRun
import Testing

/// End-to-end: many input files (plain and gzip, from a pattern) as one job.
@Suite(.serialized) struct MultiFileTests {
    @Test func naturalOrder() {
        let names = ["app-10.log.gz", "app-9.log.gz", "app-1.log", "app-100.log", "app-09.log", "app-2b.log", "app-2a.log"]
        #expect(names.sorted(by: InputList.naturallyBefore)
            == ["app-1.log", "app-2a.log", "app-2b.log", "app-9.log.gz", "app-09.log", "app-10.log.gz", "app-100.log"])
    }

    /// Writes 12 daily files, odd ones gzipped, and the same rows as one plain file.
    func makeFiles(_ scratch: Scratch) throws {
        try FileManager.default.createDirectory(at: scratch.file("logs"), withIntermediateDirectories: true)
        var all = Orders.header + "\n"
        for day in 1...12 {
            let text = Orders.csv(rows: 2500, seed: UInt64(day))
            all += text.drop { $0 != "\n" }.dropFirst()
            try scratch.write("logs/orders-\(day).csv", text)
            if day % 2 == 1 {
                #expect(try shell("gzip -6 logs/orders-\(day).csv && mv logs/orders-\(day).csv.gz logs/orders-\(day).csv", in: scratch.url) == 0)
            }
        }
        try scratch.write("all.csv", all)
    }

    @Test func killedMultiFileJobGivesTheUninterruptedOutput() throws {
        let scratch = try Scratch()
        try makeFiles(scratch)
        let job = ["-t", "filter:status=refunded", "-t", "select:id,city,note"]
        #expect(try Tool.run(["run", "all.csv", "-o", "ref.csv"] + job, in: scratch.url).status == 0)
        // Kill k once a run has read 1,800 x k rows (files of 2,500); it lands at most about 50 ms
        // of rows later, under 2,500 rows at 0.02 ms a row, on any machine. So at least eleven
        // kills come before row 30,000, each at most two files past the one before and the
        // eleventh past row 18,000: the kills see at least four files.
        let args = ["run", "logs/orders-*.csv", "-o", "out.csv", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + job
        var files = Set<Int>()
        let kills = try killRepeatedly(args, in: scratch, seed: 77, maxKills: 14, delays: 0...30,
                                       ready: { cp, killed in cp.rowsRead >= killed * 1800 }) { _ in
            if let text = try? scratch.text("out.csv.checkpoint"),
               let file = text.firstMatch(of: #/"file" : (\d+)/#).flatMap({ Int($0.1) }) {
                files.insert(file)
            }
        }
        #expect(kills >= 8)
        #expect(files.count >= 4, "checkpoints in files \(files.sorted())")
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
        let status = try Tool.run(["status", "out.csv"], in: scratch.url)
        #expect(status.stdout.contains("(input 12 of 12)"), "\(status.stdout)")
    }

    @Test func theFileListIsFixedWhenTheJobStarts() throws {
        let scratch = try Scratch()
        try makeFiles(scratch)
        let args = ["run", "logs/orders-*.csv", "-o", "out.csv", "-t", "delay:0.05"]
        let first = try stopWhen(args + ["--checkpoint-every", "0.05"], in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(first.status == 75)
        #expect(first.stderr.contains(#/\(input \d+ of 12\)/#), "\(first.stderr)")
        // A new file that matches the pattern is not part of the running job.
        try scratch.write("logs/orders-13.csv", Orders.csv(rows: 10, seed: 13))
        let rest = try Tool.run(args, in: scratch.url)
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stderr.contains("30000 rows read"), "\(rest.stderr)")
        #expect(try scratch.read("out.csv") == Data((try scratch.text("all.csv")).utf8))
    }

    @Test func aFileThatChangedBeforeItsTurnIsReportedOrSkipped() throws {
        let scratch = try Scratch()
        try makeFiles(scratch)
        let args = ["run", "logs/orders-*.csv", "-o", "out.csv", "-t", "delay:0.05"]
        // Stopped in the first files: within about 60 ms of its first rows, under 1,500 rows of 0.05 ms.
        let first = try stopWhen(args + ["--checkpoint-every", "0.05"], in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(first.status == 75)
        #expect(try #require(readCheckpoint(scratch, "out.csv.checkpoint")).file < 9)
        try FileManager.default.removeItem(at: scratch.file("logs/orders-10.csv"))
        try scratch.write("logs/orders-11.csv", "changed\n")
        let refused = try Tool.run(args, in: scratch.url)
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("logs/orders-10.csv"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--skip-changed-inputs"))
        let skipped = try Tool.run(args + ["--skip-changed-inputs"], in: scratch.url)
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("skipping: cannot open input logs/orders-10.csv"), "\(skipped.stderr)")
        #expect(skipped.stderr.contains("skipping: input logs/orders-11.csv changed since the job started"), "\(skipped.stderr)")
        #expect(skipped.stderr.contains("25000 rows read"), "\(skipped.stderr)")
    }

    @Test func headersMustAgree() throws {
        let scratch = try Scratch()
        try scratch.write("a.csv", "id,name\n1,x\n")
        try scratch.write("b.csv", "id,nom\n2,y\n")
        let r = try Tool.run(["run", "a.csv", "b.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 65)
        #expect(r.stderr.contains("b.csv: line 1: its header (id,nom) differs from the first input's (id,name)"), "\(r.stderr)")
        try scratch.write("c.csv", "id,name\n3,z\n")
        let ok = try Tool.run(["run", "a.csv", "c.csv", "-o", "ok.csv"], in: scratch.url)
        #expect(ok.status == 0)
        #expect(try scratch.text("ok.csv") == "id,name\n1,x\n3,z\n")
        let none = try Tool.run(["run", "nothing-*.csv", "-o", "n.csv"], in: scratch.url)
        #expect(none.status == 66)
        #expect(none.stderr.contains("no file matches nothing-*.csv"))
    }

    @Test func stopSignalWhileOpeningTheNextGzipFile() throws {
        // Hundreds of tiny gzip files: a signal often lands while the next file's first block
        // is being decompressed. Every run must stop cleanly (75) or finish (0), and resume.
        let scratch = try Scratch()
        try FileManager.default.createDirectory(at: scratch.file("in"), withIntermediateDirectories: true)
        #expect(try shell("for i in $(seq 1 300); do printf 'a,b\\n%d,x\\n%d,y\\n' $i $i | gzip -c > in/f-$i.csv.gz; done",
                          in: scratch.url) == 0)
        let args = ["run", "in/f-*.csv.gz", "-o", "out.csv", "--progress", "none"]
        let reference = try Tool.run(["run", "in/f-*.csv.gz", "-o", "ref.csv", "--events", "ref.jsonl"], in: scratch.url)
        #expect(reference.status == 0)
        // Signals land anywhere in a run's rows, however fast this machine runs the job: at a
        // random moment of the time the reference took from its first checkpoint (just before
        // its first row) to its end, counted from each run's first checkpoint (its signal
        // handlers are in place by then). A run that ends before its signal halves the window,
        // in case the reference ran at a busier moment than the runs.
        let events = readEvents(scratch, "ref.jsonl")
        let began = events.first { $0["event"] as? String == "started" }?["runSeconds"] as? Double ?? 0
        let ended = events.last { $0["event"] as? String == "completed" }?["runSeconds"] as? Double ?? 0
        var window = max(2_000, Int((ended - began) * 1_000_000))
        var rng = SplitMix(seed: 5)
        var stops = 0
        for _ in 0..<30 {
            try? FileManager.default.removeItem(at: scratch.file("out.csv"))
            try? FileManager.default.removeItem(at: scratch.file("out.csv.checkpoint"))
            let running = try Tool.start(args, in: scratch.url)
            let delay = UInt32(rng.next() % UInt64(window))
            if try waitUntil(running, "its first checkpoint", { readCheckpoint(scratch, "out.csv.checkpoint")?.pid == running.pid }) {
                usleep(delay)
                running.signal(SIGTERM)
            }
            let r = running.wait()
            #expect(r.status == 0 || r.status == 75, "exit \(r.status): \(r.stderr)")
            if r.status == 0 { window = max(2_000, window / 2) }
            if r.status == 75 {
                stops += 1
                let resumed = try Tool.run(args, in: scratch.url)
                #expect(resumed.status == 0, "\(resumed.stderr)")
                #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
            }
        }
        #expect(stops >= 5, "only \(stops) runs were stopped")
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
