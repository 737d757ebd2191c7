import Foundation
import Testing

/// End-to-end: jobs over ranges (`--jobs N`) write exactly what a run in one piece writes,
/// wherever the split points fall, through kills, and when resumed with another `--jobs`.
/// Small `--range-size` values give many ranges on small inputs.
@Suite(.serialized) struct RangeTests {
    /// The output of a run in one piece (one range: the whole file).
    func onePiece(_ scratch: Scratch, _ input: String, _ job: [String], output: String = "one-piece.out") throws -> Data {
        let r = try Tool.run(["run", input, "-o", output, "--restart", "--range-size", "1000000000000", "--checkpoint-every", "0"] + job,
                             in: scratch.url)
        #expect(r.status == 0, "one-piece run failed: \(r.stderr)")
        #expect(!r.stderr.contains("ranges"), "the reference ran over ranges: \(r.stderr)")
        return try scratch.read(output)
    }

    @Test func splitPointsInsideQuotedFieldsWithFakeRecordsAndMegabyteFields() throws {
        let scratch = try Scratch()
        // About 9 MB: fake records in quoted notes on every line, four fields of 1.5 MiB.
        let data = QuotedCSV.make(rows: 60_000, seed: 3, bigFieldEvery: 15_000, bigFieldBytes: 3 << 19)
        try Data(data).write(to: scratch.file("quoted.csv"))
        for job in [[], ["-t", "filter:status=refunded", "-t", "select:id,note"]] {
            let expected = try onePiece(scratch, "quoted.csv", job)
            var ranAgain = 0
            // Range sizes that are not a multiple of anything in the data; 1 MiB puts split
            // points inside the quote-free megabyte fields.
            for (jobs, size) in [(2, 1 << 20), (3, 300_007), (2, 77_777), (1, 500_000)] {
                let r = try Tool.run(["run", "quoted.csv", "-o", "out.csv", "--restart", "--jobs", String(jobs),
                                      "--range-size", String(size)] + job, in: scratch.url)
                #expect(r.status == 0, "\(r.stderr)")
                // (--jobs 1 runs a new job in one piece.)
                #expect(r.stderr.contains("ranges, --jobs \(jobs)") == (jobs > 1), "\(r.stderr)")
                #expect(try scratch.read("out.csv") == expected, "--jobs \(jobs) --range-size \(size) \(job)")
                if let match = r.stderr.firstMatch(of: /\((\d+) run again in order\)/) { ranAgain += Int(match.1)! }
            }
            // A guess made inside a quote-free megabyte field is wrong, and was caught.
            #expect(ranAgain >= 1, "no range ran again: the proof of a range's start was never exercised")
            // No segment is left behind.
            let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).filter { $0.contains(".range-") }
            #expect(left.isEmpty, "left behind: \(left)")
        }
    }

    @Test(arguments: [2, 3])
    func sigkillLoopsGiveTheOnePieceOutput(jobs: Int) throws {
        let scratch = try Scratch()
        let data = QuotedCSV.make(rows: 12_000, seed: UInt64(jobs), bigFieldEvery: 5_000, bigFieldBytes: 200_000)
        try Data(data).write(to: scratch.file("quoted.csv"))
        let job = ["-t", "filter:status=refunded", "-t", "select:id,city,note"]
        let expected = try onePiece(scratch, "quoted.csv", job)
        for output in ["out.csv", "out.csv.gz"] {
            // delay:0.05 makes the job long enough on any machine for the kills (each lands
            // after its run has checkpointed past where the previous one stopped).
            let args = ["run", "quoted.csv", "-o", output, "--jobs", String(jobs), "--range-size", "150001",
                        "--checkpoint-every", "0.01", "-t", "delay:0.05"] + job
            var kills = 0
            try killRepeatedly(args, in: scratch, seed: UInt64(jobs) * 7, maxKills: 12, delays: 0...30,
                               ready: { cp, killed in cp.rowsRead >= killed * 700 }) { _ in kills += 1 }
            let got = try scratch.read(output)
            #expect((output.hasSuffix(".gz") ? try gunzip(got, in: scratch) : got) == expected, "\(output), --jobs \(jobs)")
            #expect(kills >= 5, "only \(kills) kills")
        }
    }

    @Test func resumesUnderAnotherJobsCount() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 8_000, seed: 9)).write(to: scratch.file("quoted.csv"))
        let job = ["-t", "count-by:status,city"]
        let expected = try onePiece(scratch, "quoted.csv", job)
        var jobsCount = [3, 1, 2, 1]
        var runs = 0
        while true {
            let count = jobsCount.isEmpty ? 2 : jobsCount.removeFirst()
            let args = ["run", "quoted.csv", "-o", "counts.csv", "--jobs", String(count), "--range-size", "40000",
                        "--checkpoint-every", "0.01", "-t", "delay:0.05"] + job
            let resumedAt = readCheckpoint(scratch, "counts.csv.checkpoint")?.rowsRead ?? 0
            // Stopped once its checkpoint shows it 300 rows further (the last run ends first).
            let running = try Tool.start(args, in: scratch.url)
            _ = try signalWhen(running, SIGTERM, in: scratch, checkpoint: "counts.csv.checkpoint",
                               "past row \(resumedAt + 300)") { $0.rowsRead >= resumedAt + 300 }
            let r = running.wait()
            runs += 1
            if r.status == 0 { break }
            #expect(r.status == 75, "\(r.stderr)")
            #expect(runs == 1 || r.stderr.contains("resuming:"), "\(r.stderr)")
            if runs > 40 { Issue.record("did not finish"); break }
        }
        #expect(runs >= 3)
        #expect(try scratch.read("counts.csv") == expected)
    }

    @Test func statefulTransformsEqualTheOnePieceRun() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 20_000, seed: 4)).write(to: scratch.file("quoted.csv"))
        let chains: [[String]] = [
            ["-t", "count-by:status"],
            ["-t", "dedupe:city,status", "-t", "count-by:city"],
            ["-t", "dedupe:amount"],
            // The head's row is in the middle of the input (range 5 of 8 or so).
            ["-t", "filter:status=paid", "-t", "head:3000"],
            ["-t", "head:10"],
            ["-t", "count-by:status", "-t", "head:2"],
            ["-t", "sample:0.3:7", "-t", "select:id"],
        ]
        for chain in chains {
            let expected = try onePiece(scratch, "quoted.csv", chain)
            for jobs in [1, 2, 3] {
                let r = try Tool.run(["run", "quoted.csv", "-o", "out.csv", "--restart", "--jobs", String(jobs),
                                      "--range-size", "100000"] + chain, in: scratch.url)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try scratch.read("out.csv") == expected, "\(chain) --jobs \(jobs)")
            }
        }
    }

    @Test func execDeclaredRowLocalGetsAChildPerRange() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 4_000, seed: 14)).write(to: scratch.file("quoted.csv"))
        // cat answers every line with itself: the columns, then each row unchanged.
        try scratch.write("child.sh", "echo $$ >> pids\nexec cat\n")
        let expected = try onePiece(scratch, "quoted.csv", ["-t", "exec:cat"])
        let r = try Tool.run(["run", "quoted.csv", "-o", "out.csv", "--jobs", "2", "--range-size", "40000",
                              "-t", "exec:row-local:sh child.sh"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        let ranges = Int(r.stderr.firstMatch(of: /(\d+) ranges/)?.1 ?? "0") ?? 0
        #expect(ranges >= 5, "\(r.stderr)")
        #expect(try scratch.read("out.csv") == expected)
        // A child for each range, and one for the job's own chain.
        let pids = Set(try scratch.text("pids").split(separator: "\n"))
        #expect(pids.count == ranges + 1, "\(pids.count) children for \(ranges) ranges")
    }

    @Test func aTransformThatDeclaresNothingRunsTheJobInOnePiece() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 3_000)).write(to: scratch.file("quoted.csv"))
        let r = try Tool.run(["run", "quoted.csv", "-o", "out.csv", "--jobs", "2", "--range-size", "20000",
                              "-t", "exec:cat"], in: scratch.url)
        // (cat answers the header line with the header line: not a JSON array of names.)
        #expect(r.stderr.contains("declares no range support"), "\(r.stderr)")
        _ = r
    }

    @Test func bgzfAndManyGzipFilesRunInParallel() throws {
        let scratch = try Scratch()
        let data = QuotedCSV.make(rows: 30_000, seed: 8)
        try Data(bgzf(data)).write(to: scratch.file("quoted.csv.gz"))
        try Data(data).write(to: scratch.file("quoted.csv"))
        let job = ["-t", "filter:status=refunded"]
        let expected = try onePiece(scratch, "quoted.csv", job)
        let r = try Tool.run(["run", "quoted.csv.gz", "-o", "bgzf.csv", "--jobs", "2", "--range-size", "200000"] + job,
                             in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.read("bgzf.csv") == expected)
        let ranges = Int(r.stderr.firstMatch(of: /(\d+) ranges/)?.1 ?? "0") ?? 0
        #expect(ranges >= 5, "\(r.stderr)")

        // Several gzip files (ordinary members): a range each, in parallel, one header.
        let header = Array((QuotedCSV.header + "\n").utf8)
        var names: [String] = []
        var all = header
        for k in 0..<4 {
            let part = QuotedCSV.make(rows: 5_000, seed: 20 + UInt64(k))
            all += part[header.count...]
            let name = "part\(k).csv.gz"
            try Data(gzipped(part)).write(to: scratch.file(name))
            names.append(name)
        }
        try Data(all).write(to: scratch.file("all.csv"))
        let expectedAll = try onePiece(scratch, "all.csv", job)
        let m = try Tool.run(["run"] + names + ["-o", "many.csv", "--jobs", "3"] + job, in: scratch.url)
        #expect(m.status == 0, "\(m.stderr)")
        #expect(m.stderr.contains("4 ranges, --jobs 3"), "\(m.stderr)")
        #expect(try scratch.read("many.csv") == expectedAll)
    }

    @Test func badRecordsKeepTheirTrueLinesUnderJobs() throws {
        let scratch = try Scratch()
        // Bad records (a bare quote in an unquoted field) after a third and two thirds.
        let headerLength = QuotedCSV.header.utf8.count + 1
        var data = QuotedCSV.make(rows: 2_000, seed: 6)
        for seed: UInt64 in [16, 26] {
            data += Array("999,paid,Lyon,1\"0,bad\n".utf8)
            data += QuotedCSV.make(rows: 2_000, seed: seed)[headerLength...]
        }
        try Data(data).write(to: scratch.file("bad.csv"))
        // Quarantined: the same quarantine file (lines, offsets) and output as in one piece.
        let expected = try onePiece(scratch, "bad.csv", ["--on-error", "quarantine=q-one.csv"])
        let quarantined = try scratch.read("q-one.csv")
        #expect(String(decoding: quarantined, as: UTF8.self).split(separator: "\n").count >= 3)
        let r = try Tool.run(["run", "bad.csv", "-o", "out.csv", "--jobs", "3", "--range-size", "30000",
                              "--on-error", "quarantine=q.csv"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.read("out.csv") == expected)
        #expect(try scratch.read("q.csv") == quarantined)
        // Failing: the same message, naming the first bad record's line and byte.
        let one = try Tool.run(["run", "bad.csv", "-o", "fail-one.csv", "--range-size", "1000000000000"], in: scratch.url)
        let many = try Tool.run(["run", "bad.csv", "-o", "fail.csv", "--jobs", "3", "--range-size", "30000"], in: scratch.url)
        #expect(one.status == 65 && many.status == 65, "\(one.stderr) / \(many.stderr)")
        let message = { (s: String) in s.split(separator: "\n").first { $0.contains("error:") }.map(String.init) ?? s }
        #expect(message(many.stderr).replacingOccurrences(of: "fail.csv", with: "fail-one.csv") == message(one.stderr))
        #expect(try scratch.read("fail.csv") == scratch.read("fail-one.csv"))
    }

    @Test func aCheckpointWithOneCursorResumesInOnePiece() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 6_000, seed: 2)).write(to: scratch.file("quoted.csv"))
        let job = ["-t", "filter:status=paid"]
        let expected = try onePiece(scratch, "quoted.csv", job)
        // A job started in one piece (as every job before ranges), stopped mid-input...
        let first = try stopWhen(["run", "quoted.csv", "-o", "out.csv", "--range-size", "1000000000000",
                                  "--checkpoint-every", "0.01", "-t", "delay:0.05"] + job,
                                 in: scratch, "past row 500") { $0.rowsRead >= 500 }
        #expect(first.status == 75, "\(first.stderr)")
        #expect(readCheckpoint(scratch, "out.csv.checkpoint")?.json["ranges"] == nil)
        // ...resumes at its cursor with a build and options that would split it now.
        let r = try Tool.run(["run", "quoted.csv", "-o", "out.csv", "--jobs", "3", "--range-size", "20000",
                              "-t", "delay:0.05"] + job, in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("resuming at row"), "\(r.stderr)")
        #expect(try scratch.read("out.csv") == expected)
    }

    @Test func aFailedJobResumesOnAnInputFixedAfterTheBadRecord() throws {
        let scratch = try Scratch()
        let headerLength = QuotedCSV.header.utf8.count + 1
        let bad = Array("999,paid,Lyon,1\"0,bad\n".utf8)
        let fixed = Array("999,paid,Lyon,10.00,fixed by hand\n".utf8)
        let before = QuotedCSV.make(rows: 3_000, seed: 31)
        let after = Array(QuotedCSV.make(rows: 3_000, seed: 32)[headerLength...])
        try Data(before + bad + after).write(to: scratch.file("in.csv"))
        let args = ["run", "in.csv", "-o", "out.csv", "--jobs", "2", "--range-size", "50000"]
        let failed = try Tool.run(args, in: scratch.url)
        #expect(failed.status == 65, "\(failed.stderr)")
        #expect(failed.stderr.contains("line "), "\(failed.stderr)")
        // Fixed in place (a longer record: everything after it moves).
        try Data(before + fixed + after).write(to: scratch.file("in.csv"))
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("not before the bad record: resuming at byte \(before.count)"), "\(resumed.stderr)")
        try Data(before + fixed + after).write(to: scratch.file("fixed.csv"))
        #expect(try scratch.read("out.csv") == onePiece(scratch, "fixed.csv", []))
        // Changed just before the bad record (in the bytes the checkpoint vouches for): refused.
        try Data(before + bad + after).write(to: scratch.file("in.csv"))
        _ = try Tool.run(args + ["--restart"], in: scratch.url)
        var edited = before + fixed + after
        edited[before.count - 100] = edited[before.count - 100] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
        try Data(edited).write(to: scratch.file("in.csv"))
        let refused = try Tool.run(args, in: scratch.url)
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("changed since the checkpoint"), "\(refused.stderr)")
    }

    @Test func statusSumsTheRanges() throws {
        let scratch = try Scratch()
        try Data(QuotedCSV.make(rows: 6_000, seed: 12)).write(to: scratch.file("in.csv"))
        let args = ["run", "in.csv", "-o", "out.csv", "--jobs", "2", "--range-size", "40000", "--checkpoint-every", "0.01",
                    "-t", "delay:0.05", "--events", "events.jsonl"]
        let stopped = try stopWhen(args, in: scratch, "800 rows read") { $0.rowsRead >= 800 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        let status = try Tool.run(["status", "out.csv", "--json"], in: scratch.url)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let cp = try #require(readCheckpoint(scratch, "out.csv.checkpoint"))
        let ranges = try #require(cp.json["ranges"] as? [String: Any])
        #expect(json["rowsRead"] as? Int == cp.rowsRead)
        #expect(json["position"] as? Int == ranges["processedInputBytes"] as? Int)
        #expect((json["position"] as? Int ?? 0) > 0)
        #expect(json["ranges"] as? Int == (ranges["ranges"] as? [Any])?.count)
        // The rows of every range, run ahead or in order, are in the total.
        let runs = (ranges["ranges"] as? [[String: Any]] ?? []).compactMap { $0["run"] as? [String: Any] }
        let frontier = ranges["frontier"] as? [String: Any] ?? [:]
        let sum = runs.reduce(frontier["rowsRead"] as? Int ?? 0) { $0 + ($1["rowsRead"] as? Int ?? 0) }
        #expect(cp.rowsRead == sum)
        #expect(readEvents(scratch, "events.jsonl").last?["event"] as? String == "interrupted")
    }
}

/// The bytes of gzip `data`, decompressed by gzip itself.
func gunzip(_ data: Data, in scratch: Scratch) throws -> Data {
    try data.write(to: scratch.file("to-gunzip.gz"))
    _ = try capture("gzip", ["-dkf", scratch.file("to-gunzip.gz").path])
    return try scratch.read("to-gunzip")
}
