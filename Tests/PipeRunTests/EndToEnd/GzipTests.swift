import Foundation
import Testing

/// Runs a shell command in `dir`; returns its exit status.
@discardableResult
func shell(_ command: String, in dir: URL) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", command]
    p.currentDirectoryURL = dir
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

func haveCommand(_ name: String) -> Bool {
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

/// End-to-end: gzip input from every common writer, killed at random moments, must give the
/// output of an uninterrupted run on the plain file; damaged gzip gives clear errors.
@Suite(.serialized) struct GzipTests {
    static let job = ["-t", "filter:status=refunded", "-t", "select:id,city,amount,note"]

    /// Kills runs of `args` at random moments, spread over the input by rows (kill k once a run
    /// has read `spread` x k rows), except that kill number kills/2 waits for a checkpoint past
    /// the first gzip member (whatever the machine's speed), until a run finishes; returns the
    /// gzip access points the checkpoints held when the runs were killed. An input of a single
    /// member is finished by the run that waits for the second.
    func killRepeatedly(_ args: [String], in scratch: Scratch, seed: UInt64, kills: Int, spread: Int) throws -> [String] {
        var points: [String] = []
        func record(_: Tool.Result) {
            if let text = try? scratch.text("out.csv.checkpoint"), let start = text.range(of: "\"gzip\" : {") {
                let tail = text[start.upperBound...]
                let member = tail.firstMatch(of: #/"member" : (\d+)/#).map { String($0.1) } ?? "?"
                let atStart = tail.firstMatch(of: #/"atMemberStart" : (\w+)/#).map { String($0.1) } ?? "?"
                points.append("member \(member) start \(atStart)")
            }
        }
        let early = kills / 2
        try PipeRunTests.killRepeatedly(args, in: scratch, seed: seed, maxKills: kills, delays: 0...30, ready: { cp, killed in
            killed == early ? (cp.gzipMember ?? 1) != 1 : cp.rowsRead >= killed * spread
        }, afterKill: record)
        return points
    }

    func plainReference(_ scratch: Scratch, _ plain: String, format: [String] = [], job: [String] = job) throws -> Data {
        let r = try Tool.run(["run", plain, "-o", "reference.out"] + format + job, in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        return try scratch.read("reference.out")
    }

    @Test(arguments: [
        ("two gzip -6 members", "gzip -6 -c part1.csv > in.gz && gzip -6 -c part2.csv >> in.gz"),
        ("gzip -1, and an empty member", "gzip -1 -c part1.csv > in.gz && printf '' | gzip -c >> in.gz && gzip -9 -c part2.csv >> in.gz"),
    ])
    func killedGzipJobsGiveTheUninterruptedOutput(_ name: String, _ make: String) throws {
        let scratch = try Scratch()
        let text = Orders.csv(rows: 40_000, seed: 5)
        try scratch.write("plain.csv", text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // Split between rows 20000 and 20001 (no quoted newline there in this data).
        let cut = lines.prefix(20_001).joined(separator: "\n").utf8.count + 1
        try Data(text.utf8.prefix(cut)).write(to: scratch.file("part1.csv"))
        try Data(text.utf8.dropFirst(cut)).write(to: scratch.file("part2.csv"))
        #expect(try shell(make, in: scratch.url) == 0)
        let expected = try plainReference(scratch, "plain.csv")
        // A run is killed at most about 50 ms after its checkpoint shows it where its kill is due
        // (a checkpoint every 10 ms, polling, and a random 0-30 ms): at 0.02 ms a row, under
        // 2,500 rows later on any machine. So the 40,000 rows outlast the first seven kills (six
        // due at rows 0 to 15,000, one in the second member), which leave the points counted.
        let args = ["run", "in.gz", "-o", "out.csv", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + Self.job
        let points = try killRepeatedly(args, in: scratch, seed: 3, kills: 12, spread: 3000)
        #expect(try scratch.read("out.csv") == expected, "\(name)")
        #expect(points.count >= 5, "\(name): \(points)")
        #expect(points.contains { !$0.hasPrefix("member 1 ") }, "\(name): no resume after the first member: \(points)")
    }

    @Test(.enabled(if: haveCommand("pigz") && haveCommand("bgzip"), "needs pigz and bgzip (Debian pigz, tabix)"),
          arguments: [("pigz", "pigz -c plain.csv > in.gz"), ("pigz -i", "pigz -i -c plain.csv > in.gz"),
                      ("bgzip", "bgzip -c plain.csv > in.gz")])
    func killedJobsOnOtherWriters(_ name: String, _ make: String) throws {
        let scratch = try Scratch()
        try scratch.write("plain.csv", Orders.csv(rows: 40_000, seed: 8))
        #expect(try shell(make, in: scratch.url) == 0)
        let expected = try plainReference(scratch, "plain.csv")
        // (As above: the first five kills, at rows 0 to 12,000, land before the end on any machine.)
        let args = ["run", "in.gz", "-o", "out.csv", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + Self.job
        let points = try killRepeatedly(args, in: scratch, seed: 4, kills: 10, spread: 3000)
        #expect(try scratch.read("out.csv") == expected, "\(name)")
        #expect(points.count >= 4, "\(name): \(points)")
        if name == "bgzip" {
            // BGZF members are 64 KiB: resumes land between members, right after a header.
            #expect(points.contains { $0.hasSuffix("start true") && !$0.hasPrefix("member 1 ") }, "\(points)")
        }
    }

    @Test func storedBlocksOfRandomData() throws {
        let scratch = try Scratch()
        var rng = SplitMix(seed: 12)
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for i in stride(from: 0, to: bytes.count, by: 8) {
            withUnsafeBytes(of: rng.next()) { word in
                for j in 0..<8 where i + j < bytes.count { bytes[i + j] = word[j] }
            }
        }
        try Data(bytes).write(to: scratch.file("random.bin"))
        #expect(try shell("gzip -6 -c random.bin > in.gz", in: scratch.url) == 0)
        let expected = try plainReference(scratch, "random.bin", format: ["--format", "lines"], job: [])
        // About 12,000 lines; a kill lands at most about 50 ms after it is due, under 1,000
        // lines at 0.05 ms a line, so the first four kills (due at lines 0 to 7,500) land before
        // the end on any machine.
        let args = ["run", "in.gz", "-o", "out.csv", "--format", "lines", "--checkpoint-every", "0.01", "-t", "delay:0.05"]
        let points = try killRepeatedly(args, in: scratch, seed: 6, kills: 8, spread: 2500)
        #expect(try scratch.read("out.csv") == expected)
        #expect(points.count >= 3, "\(points)")
    }

    @Test func damagedGzipGivesClearErrors() throws {
        let scratch = try Scratch()
        try scratch.write("plain.csv", Orders.csv(rows: 3000))
        #expect(try shell("gzip -6 -c plain.csv > good.gz", in: scratch.url) == 0)
        let good = Array(try scratch.read("good.gz"))
        func check(_ bytes: [UInt8], _ message: String, status: Int32 = 65) throws {
            try Data(bytes).write(to: scratch.file("bad.gz"))
            let r = try Tool.run(["run", "bad.gz", "-o", "out.csv", "--restart"], in: scratch.url)
            #expect(r.status == status, "\(message): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            if status != 0 {
                #expect(r.stderr.contains("bad.gz: gzip member 1"), "\(r.stderr)")
                #expect(r.stderr.contains("at compressed byte"), "\(r.stderr)")
            }
        }
        var crc = good
        crc[crc.count - 6] ^= 0x01
        try check(crc, "CRC-32 mismatch")
        try check(Array(good.prefix(good.count / 2)), "unexpected end of file")
        try check(Array(good.prefix(good.count - 3)), "unexpected end of file in the gzip trailer")
        try check(good + Array("garbage".utf8), "garbage after the end of the member")
        var body = good
        body[good.count / 2] ^= 0xFF
        try Data(body).write(to: scratch.file("bad.gz"))
        let corrupt = try Tool.run(["run", "bad.gz", "-o", "out.csv", "--restart"], in: scratch.url)
        #expect(corrupt.status == 65, "\(corrupt.stderr)")
        // Zero padding after the last member is accepted, as gzip accepts it.
        try check(good + [UInt8](repeating: 0, count: 1000), "done:", status: 0)
        // Detection is by content, not by name: plain text called .gz is read as plain text.
        try FileManager.default.copyItem(at: scratch.file("plain.csv"), to: scratch.file("plain-named.gz"))
        let named = try Tool.run(["run", "plain-named.gz", "-o", "named.csv"], in: scratch.url)
        #expect(named.status == 0)
        #expect(try scratch.read("named.csv") == scratch.read("plain.csv"))
    }

    @Test func crcIsStillCheckedAfterAResumeInsideTheMember() throws {
        let scratch = try Scratch()
        try scratch.write("plain.csv", Orders.csv(rows: 30_000))
        #expect(try shell("gzip -6 -c plain.csv > in.gz", in: scratch.url) == 0)
        // Stopped once a checkpoint holds an access point inside the member (the first is about
        // 15,000 rows in, however long the machine takes to get there). The stop comes at most
        // a checkpoint interval and a poll later: at 0.02 ms a row, under 3,000 rows, well
        // before the end on any machine.
        let args = ["run", "in.gz", "-o", "out.csv", "-t", "delay:0.02", "--checkpoint-every", "0.05"]
        let stopped = try stopWhen(args, in: scratch, "an access point inside the gzip member") { $0.atMemberStart == false }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        let checkpoint = try scratch.text("out.csv.checkpoint")
        #expect(checkpoint.contains("\"atMemberStart\" : false"), "the resume point is inside the member")
        // Damage the trailer's CRC, keeping size and time: the input check cannot see it (it is
        // after the cursor), but the member's CRC, carried across the resume, does.
        let path = scratch.file("in.gz").path
        #expect(try shell("cp -p in.gz saved.gz", in: scratch.url) == 0)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).int64Value
        let fd = open(path, O_RDWR)
        var byte: UInt8 = 0
        _ = pread(fd, &byte, 1, off_t(size - 7))
        byte ^= 0x10
        _ = pwrite(fd, &byte, 1, off_t(size - 7))
        close(fd)
        #expect(try shell("touch -r saved.gz in.gz", in: scratch.url) == 0)
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 65, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("CRC-32 mismatch"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming at row"))
    }

    @Test func gzipOutputIsValidAtEveryCheckpointAndExactAfterKills() throws {
        let scratch = try Scratch()
        try scratch.write("plain.csv", Orders.csv(rows: 40_000, seed: 21))
        let expected = try plainReference(scratch, "plain.csv")
        // Kill k once a run has read 3,000 x k rows; it lands at most about 50 ms of rows later,
        // under 2,500 rows at 0.02 ms a row: the first five kills come before the end on any machine.
        let args = ["run", "plain.csv", "-o", "out.csv.gz", "--checkpoint-every", "0.01", "-t", "delay:0.02"] + Self.job
        var checkedPrefixes = 0
        let kills = try PipeRunTests.killRepeatedly(args, in: scratch, seed: 9, maxKills: 10, delays: 0...30,
                                                    ready: { cp, killed in cp.rowsRead >= killed * 3000 }) { _ in
            // The part of the output the checkpoint vouches for is a valid gzip file.
            if let text = try? scratch.text("out.csv.gz.checkpoint"),
               let length = text.firstMatch(of: #/"output" : \{[^}]*"length" : (\d+)/#).flatMap({ Int($0.1) }),
               length > 0 {
                try scratch.read("out.csv.gz").prefix(length).write(to: scratch.file("prefix.gz"))
                #expect(try shell("gzip -t prefix.gz", in: scratch.url) == 0)
                checkedPrefixes += 1
            }
        }
        #expect(kills >= 5)
        #expect(checkedPrefixes >= 4)
        #expect(try shell("gzip -t out.csv.gz && gzip -dc out.csv.gz > unzipped.csv", in: scratch.url) == 0)
        #expect(try scratch.read("unzipped.csv") == expected)
        // A clean stop leaves the whole file valid. (40,000 rows at 0.02 ms take 0.8 s at the
        // least: the run cannot end before --max-runtime, however fast the machine.)
        let stopped = try Tool.run(["run", "plain.csv", "-o", "stop.csv.gz", "-t", "delay:0.02", "--max-runtime", "0.3"] + Self.job,
                                   in: scratch.url)
        #expect(stopped.status == 75)
        #expect(try shell("gzip -t stop.csv.gz", in: scratch.url) == 0)
    }

    @Test func withoutAccessPointsItDecompressesAgainAndSaysSo() throws {
        let scratch = try Scratch()
        try scratch.write("plain.csv", Orders.csv(rows: 120_000, seed: 30))
        #expect(try shell("gzip -6 -c plain.csv > in.gz", in: scratch.url) == 0)
        let expected = try plainReference(scratch, "plain.csv")
        // As if the whole file were one huge deflate block: no access point after the start.
        let args = ["run", "in.gz", "-o", "out.csv", "--gzip-access-point-spacing", "1000000000000",
                    "-t", "delay:0.005"] + Self.job
        // Killed once a checkpoint lies 3 MiB in (over 2 MiB must be decompressed again for a
        // notice), however fast the machine: the kill comes at most a checkpoint interval and a
        // poll later, under 13,000 rows at 0.005 ms a row, and about 50,000 rows follow.
        let running = try Tool.start(args + ["--checkpoint-every", "0.05"], in: scratch.url)
        let signalled = try signalWhen(running, SIGKILL, in: scratch, checkpoint: "out.csv.checkpoint",
                                       "a cursor 3 MiB in") { $0.offset >= 3 << 20 }
        let killed = running.wait()
        #expect(signalled && killed.signaled, "the run ended before a checkpoint 3 MiB in: \(killed.stderr)")
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("no gzip access point near the cursor"), "\(resumed.stderr)")
        #expect(try scratch.read("out.csv") == expected)
    }
}
