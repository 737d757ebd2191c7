import Foundation
import Testing

/// End-to-end: the end of a job does not wait for the disk. Its completion is recorded beside
/// the last synced checkpoint and counts only in the boot it happened in; after a restart of
/// the machine (simulated here by changing the recorded boot and wiping what the disk may not
/// have held), the job writes again what followed the last synced checkpoint.
@Suite(.serialized) struct EndOfJobTests {
    /// The checkpoint as JSON.
    func checkpoint(_ scratch: Scratch, _ name: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: scratch.read(name)) as? [String: Any])
    }

    /// A file's bytes, decompressed when it is gzip (the members of a gzip output depend on when
    /// its checkpoints were written).
    func content(_ scratch: Scratch, _ name: String) throws -> Data {
        guard name.hasSuffix(".gz") else { return try scratch.read(name) }
        #expect(try shell("gzip -dc \(name) > \(name).plain", in: scratch.url) == 0)
        return try scratch.read(name + ".plain")
    }

    func length(_ object: Any?) -> Int? {
        ((object as? [String: Any])?["output"] as? [String: Any])?["length"] as? Int
    }

    /// Replaces the boot id recorded with the completion, as if the machine had restarted.
    func pretendARestart(_ scratch: Scratch, _ name: String) throws {
        var recorded = try checkpoint(scratch, name)
        var completion = try #require(recorded["completion"] as? [String: Any])
        completion["bootID"] = "00000000-0000-4000-8000-000000000000"
        recorded["completion"] = completion
        try JSONSerialization.data(withJSONObject: recorded, options: [.prettyPrinted]).write(to: scratch.file(name))
    }

    @Test(arguments: [false, true])
    func anEndLostWithARestartIsWrittenAgain(gzip: Bool) throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 3000, seed: 5))
        let input = gzip ? "in.csv.gz" : "in.csv"
        let output = gzip ? "out.csv.gz" : "out.csv"
        if gzip { #expect(try shell("gzip -c in.csv > in.csv.gz", in: scratch.url) == 0) }
        let job = ["-t", "delay:0.2", "-t", "select:id,city,amount,note"]

        // The reference, synced at the end: its checkpoint is complete as it stands.
        let reference = try Tool.run(["run", input, "-o", "ref-" + output, "--sync"] + job, in: scratch.url)
        #expect(reference.status == 0, "\(reference.stderr)")
        let synced = try checkpoint(scratch, "ref-\(output).checkpoint")
        #expect(synced["status"] as? String == "complete")
        #expect(synced["completion"] == nil)

        // Interrupted part-way, then finished: the end is recorded in this boot, beside the
        // checkpoint the second run started from.
        // (Stopped once a checkpoint shows rows read: within about 60 ms, under 300 of the 3,000
        // rows of 0.2 ms. The runs after it checkpoint only when they stop, so the one that
        // finishes started from the last synced checkpoint, however long it takes.)
        let args = ["run", input, "-o", output, "--checkpoint-every", "0"] + job
        let first = try stopWhen(["run", input, "-o", output, "--checkpoint-every", "0.05"] + job, in: scratch, "rows read") {
            $0.rowsRead > 0
        }
        #expect(first.status == 75, "\(first.stderr)")
        let second = try Tool.run(args, in: scratch.url)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try content(scratch, output) == content(scratch, "ref-" + output))
        let recorded = try checkpoint(scratch, "\(output).checkpoint")
        let completion = try #require(recorded["completion"] as? [String: Any])
        let boot = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(completion["bootID"] as? String == boot)
        let syncedLength = try #require(length(recorded))
        let finalLength = try #require(length(completion["checkpoint"]))
        #expect(syncedLength > 0 && syncedLength < finalLength, "\(syncedLength) \(finalLength)")
        // In this boot the job is complete.
        #expect(try Tool.run(["status", output], in: scratch.url).stdout.contains("state       complete"))

        // A restart: another boot, and what followed the synced checkpoint lost (zeros where
        // the file kept its length, for plain output; cut short for gzip).
        try pretendARestart(scratch, "\(output).checkpoint")
        let handle = try FileHandle(forWritingTo: scratch.file(output))
        if gzip {
            try handle.truncate(atOffset: UInt64(syncedLength + (finalLength - syncedLength) / 2))
        } else {
            try handle.seek(toOffset: UInt64(syncedLength))
            try handle.write(contentsOf: Data(count: finalLength - syncedLength))
        }
        try handle.close()
        let status = try Tool.run(["status", output], in: scratch.url)
        #expect(status.stdout.contains("state       interrupted"), "\(status.stdout)")
        #expect(status.stdout.contains("machine restarted"), "\(status.stdout)")

        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("the machine restarted after this job ended"), "\(resumed.stderr)")
        #expect(try content(scratch, output) == content(scratch, "ref-" + output))
        #expect(try Tool.run(["status", output], in: scratch.url).stdout.contains("state       complete"))
    }

    /// After a restart, an end whose bytes all reached the disk is confirmed by their CRC-32
    /// (of the output and the quarantine file after the checkpoint the last run started from),
    /// without reading the input again.
    @Test(arguments: [false, true])
    func anEndKeptThroughARestartIsConfirmedByItsChecksum(gzip: Bool) throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 2000, seed: 6) + "1,\"x\"y,refunded\n")
        let output = gzip ? "out.csv.gz" : "out.csv"
        let args = ["run", "in.csv", "-o", output, "-t", "delay:0.2", "-t", "filter:status!=refunded",
                    "--on-error", "quarantine=bad.csv", "--checkpoint-every", "0.05"]
        // Stopped once a checkpoint shows rows read: within about 60 ms, under 300 of the 2,000 rows of 0.2 ms.
        let stopped = try stopWhen(args, in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        let written = try scratch.read(output)
        let quarantined = try scratch.read("bad.csv")
        let recorded = try checkpoint(scratch, "\(output).checkpoint")
        let completion = try #require(recorded["completion"] as? [String: Any])
        #expect(try #require(length(recorded)) > 100 && #require(length(recorded)) < #require(length(completion["checkpoint"])))
        #expect(String(decoding: quarantined, as: UTF8.self).contains("x\"\"y"))
        try pretendARestart(scratch, "\(output).checkpoint")
        // The input is gone since (a rotated log): confirming the end does not need it.
        try FileManager.default.removeItem(at: scratch.file("in.csv"))

        let again = try Tool.run(args, in: scratch.url)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("already complete"), "\(again.stderr)")
        #expect(try scratch.read(output) == written)
        #expect(try scratch.read("bad.csv") == quarantined)
        let confirmed = try checkpoint(scratch, "\(output).checkpoint")
        #expect(confirmed["status"] as? String == "complete")
        #expect(confirmed["completion"] == nil)
    }

    /// A complete job is reported as complete when its input is gone since (a rotated log), also
    /// when it was named by a pattern.
    @Test func aCompleteJobNeedsNoInput() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 500, seed: 9))
        for extra in [["--sync"], []] {
            let args = ["run", "in.csv", "-o", "out.csv", "--restart"] + extra
            #expect(try Tool.run(args, in: scratch.url).status == 0)
            try FileManager.default.moveItem(at: scratch.file("in.csv"), to: scratch.file("rotated.csv"))
            let again = try Tool.run(Array(args.dropLast(extra.count + 1)), in: scratch.url)
            #expect(again.status == 0, "\(extra): \(again.stderr)")
            #expect(again.stderr.contains("already complete"), "\(extra): \(again.stderr)")
            try FileManager.default.moveItem(at: scratch.file("rotated.csv"), to: scratch.file("in.csv"))
        }
        // The same with a pattern that matches nothing any more.
        try FileManager.default.createDirectory(at: scratch.file("logs"), withIntermediateDirectories: true)
        for i in 1...2 { try scratch.write("logs/p\(i).csv", Orders.csv(rows: 300, seed: UInt64(i))) }
        let args = ["run", "logs/p*.csv", "-o", "all.csv"]
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        try FileManager.default.removeItem(at: scratch.file("logs"))
        let again = try Tool.run(args, in: scratch.url)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("already complete"), "\(again.stderr)")
        let fresh = try Tool.run(args + ["--restart"], in: scratch.url)
        #expect(fresh.status == 66, "\(fresh.stderr)")
        #expect(fresh.stderr.contains("no file matches logs/p*.csv"), "\(fresh.stderr)")
        // A job that is not complete still needs its files.
        try FileManager.default.createDirectory(at: scratch.file("logs"), withIntermediateDirectories: true)
        for i in 1...2 { try scratch.write("logs/p\(i).csv", Orders.csv(rows: 2000, seed: UInt64(i))) }
        let slow = args + ["-t", "delay:0.2"]
        // Stopped once a checkpoint shows rows read: within about 60 ms, under 300 of the 4,000 rows of 0.2 ms.
        let stopped = try stopWhen(slow + ["--restart", "--checkpoint-every", "0.05"], in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        try FileManager.default.removeItem(at: scratch.file("logs"))
        let unfinished = try Tool.run(slow, in: scratch.url)
        #expect(unfinished.status == 66, "\(unfinished.stderr)")
        #expect(unfinished.stderr.contains("no file matches logs/p*.csv"), "\(unfinished.stderr)")
        // A complete job's checkpoint is not applied to a pipe, which is read afresh: the same
        // command, first on a file given as standard input, then on a pipe.
        let day = ["run", "/dev/stdin", "-o", "day.csv"]
        #expect(try Tool.run(day, in: scratch.url, stdin: "a,b\n1,2\n").status == 0)
        let piped = try Tool.run(day, in: scratch.url, shellPrefix: "printf 'a,b\\n3,4\\n' |")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(!piped.stderr.contains("already complete"), "\(piped.stderr)")
        #expect(try scratch.text("day.csv") == "a,b\n3,4\n")
    }

    /// A rerun in the same boot syncs the outputs and saves the complete checkpoint as any
    /// other; a quarantine file changed after a restart is not confirmed.
    @Test func aRerunMakesTheEndDurableAndAChangedQuarantineIsNotConfirmed() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 1000, seed: 8) + "1,\"x\"y,refunded\n")
        let args = ["run", "in.csv", "-o", "out.csv", "--on-error", "quarantine=bad.csv"]
        #expect(try Tool.run(args, in: scratch.url).status == 0)
        #expect(try checkpoint(scratch, "out.csv.checkpoint")["completion"] != nil)
        let again = try Tool.run(args, in: scratch.url)
        #expect(again.stderr.contains("already complete"), "\(again.stderr)")
        let confirmed = try checkpoint(scratch, "out.csv.checkpoint")
        #expect(confirmed["status"] as? String == "complete")
        #expect(confirmed["completion"] == nil)

        // Once more, with the quarantine file's last byte changed after a "restart".
        #expect(try Tool.run(args + ["--restart"], in: scratch.url).status == 0)
        let expected = try scratch.read("out.csv")
        let quarantined = try scratch.read("bad.csv")
        try pretendARestart(scratch, "out.csv.checkpoint")
        var damaged = quarantined
        damaged[damaged.count - 2] = UInt8(ascii: "#")
        try damaged.write(to: scratch.file("bad.csv"))
        let resumed = try Tool.run(args, in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("the machine restarted after this job ended"), "\(resumed.stderr)")
        #expect(try scratch.read("out.csv") == expected)
        #expect(try scratch.read("bad.csv") == quarantined)
    }
}
