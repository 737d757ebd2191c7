import Foundation
import Testing

/// Runs the built `pipe-run` binary, as a user would.
enum Tool {
    /// The `pipe-run` executable built beside this test bundle.
    static let path: String = {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let candidate = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("pipe-run").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        for bundle in Bundle.allBundles {
            let candidate = bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("pipe-run").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/pipe-run").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var signaled: Bool
        var seconds: Double
    }

    /// Runs `pipe-run ARGS` in `dir` to its end.
    @discardableResult
    static func run(_ args: [String], in dir: URL, stdin: String? = nil, shellPrefix: String? = nil) throws -> Result {
        let running = try start(args, in: dir, stdin: stdin, shellPrefix: shellPrefix)
        return running.wait()
    }

    /// Starts `pipe-run ARGS` in `dir` without waiting.
    static func start(_ args: [String], in dir: URL, stdin: String? = nil, shellPrefix: String? = nil) throws -> Running {
        let process = Process()
        if let shellPrefix {
            // e.g. "ulimit -f 64;" — a shell sets a limit, then becomes pipe-run.
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            let quoted = ([path] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            process.arguments = ["-c", "\(shellPrefix) exec \(quoted.joined(separator: " "))"]
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = args
        }
        process.currentDirectoryURL = dir
        let id = UUID().uuidString
        let out = dir.appendingPathComponent(".stdout-\(id)")
        let err = dir.appendingPathComponent(".stderr-\(id)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let file = dir.appendingPathComponent(".stdin-\(id)")
            try stdin.write(to: file, atomically: true, encoding: .utf8)
            process.standardInput = try FileHandle(forReadingFrom: file)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let started = Date()
        try process.run()
        return Running(process: process, out: out, err: err, started: started)
    }

    final class Running {
        let process: Process
        let out: URL
        let err: URL
        let started: Date

        init(process: Process, out: URL, err: URL, started: Date) {
            self.process = process
            self.out = out
            self.err = err
            self.started = started
        }

        var pid: Int32 { process.processIdentifier }

        /// Sends `sig`, unless the run has ended (its pid may be someone else's by now).
        func signal(_ sig: Int32) {
            if process.isRunning { kill(process.processIdentifier, sig) }
        }

        var isRunning: Bool { process.isRunning }

        func wait() -> Result {
            process.waitUntilExit()
            let seconds = Date().timeIntervalSince(started)
            let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
            return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                          signaled: process.terminationReason == .uncaughtSignal, seconds: seconds)
        }
    }
}

/// A scratch directory, removed when the test ends.
final class Scratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("pipe-run-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: file(name), atomically: true, encoding: .utf8)
    }

    func read(_ name: String) throws -> Data {
        try Data(contentsOf: file(name))
    }

    func text(_ name: String) throws -> String {
        String(decoding: try read(name), as: UTF8.self)
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: file(name).path)
    }
}

/// Deterministic orders data with quoted commas, doubled quotes, quoted newlines and UTF-8.
enum Orders {
    static let header = "id,customer,city,status,amount,note"
    static let statuses = ["paid", "shipped", "refunded", "pending", "cancelled", "refunded"]
    static let cities = ["Lyon", "\"Washington, D.C.\"", "Kraków", "Zürich", "\"St. John's, NL\"", "Oslo"]

    static func csv(rows: Int, seed: UInt64 = 7) -> String {
        var rng = SplitMix(seed: seed)
        var out = header + "\n"
        for id in 1...max(rows, 1) {
            let r = rng.next()
            let customer = r % 17 == 0 ? "\"Doe, Jane \"\"JD\"\"\"" : "cust\(r % 5000)"
            let city = cities[Int((r >> 8) % UInt64(cities.count))]
            let status = statuses[Int((r >> 16) % UInt64(statuses.count))]
            let amount = "\((r >> 24) % 10000).\(String(format: "%02d", (r >> 40) % 100))"
            let note: String
            switch (r >> 48) % 23 {
            case 0: note = "\"line one\nline two\""
            case 1: note = "\"said \"\"hello\"\", left\""
            case 2: note = "\"crlf\r\ninside\""
            case 3: note = "ünïcödé ✓"
            default: note = ""
            }
            out += "\(id),\(customer),\(city),\(status),\(amount),\(note)\n"
        }
        return out
    }
}

/// Runs `args` again and again, SIGKILLing each run at a random moment after it got going,
/// until a run finishes by itself; after `maxKills` kills the next run may finish. `afterKill`
/// sees each killed run's result (and can look at the files it left). Returns how many runs
/// were killed; a run that finished must exit 0.
///
/// A run is killed `delays` milliseconds (drawn at random) after its checkpoint first shows it
/// running past the row it resumed at, and past what `ready` asks for (given the number of runs
/// killed so far, e.g. a row to spread the kills over the input). So every kill lands after the
/// run resumed and made progress, however slow the machine. A test that needs some number of
/// kills before the job ends makes the job long enough for them, however fast the machine: a
/// `delay:MS` per row bounds how many rows a run can read before it is killed (see the tests).
@discardableResult
func killRepeatedly(_ args: [String], in scratch: Scratch, seed: UInt64, maxKills: Int, delays: ClosedRange<Int>,
                    ready: (CheckpointView, _ kills: Int) -> Bool = { _, _ in true },
                    afterKill: (Tool.Result) throws -> Void = { _ in }) throws -> Int {
    var rng = SplitMix(seed: seed)
    let name = checkpointName(args)
    var kills = 0
    while true {
        let resumedAt = readCheckpoint(scratch, name)?.rowsRead ?? 0
        let running = try Tool.start(args, in: scratch.url)
        if kills < maxKills {
            let delay = delays.lowerBound + Int(rng.next() % UInt64(delays.count))
            let going = try waitUntil(running, "run \(kills + 1) past row \(resumedAt) and ready for its kill (\(name))") {
                guard let cp = readCheckpoint(scratch, name), cp.pid == running.pid, cp.status == "running",
                      cp.rowsRead > resumedAt else { return false }
                return ready(cp, kills)
            }
            if going {
                usleep(UInt32(delay * 1000))
                running.signal(SIGKILL)
                let r = running.wait()
                if r.signaled {
                    kills += 1
                    try afterKill(r)
                    continue
                }
                #expect(r.status == 0, "run ended with \(r.status): \(r.stderr)")
                return kills
            }
        }
        let r = running.wait()
        #expect(r.status == 0, "run ended with \(r.status): \(r.stderr)")
        return kills
    }
}

/// Runs `executable ARGS` (found on PATH) in `dir` to its end; returns its exit status and
/// what it wrote on standard output and standard error together.
func capture(_ executable: String, _ args: [String], in dir: URL? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [executable] + args
    if let dir { p.currentDirectoryURL = dir }
    let log = Pipe()
    p.standardOutput = log
    p.standardError = log
    try p.run()
    let output = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, output)
}

// MARK: Waiting for what a running job shows

/// A checkpoint as the waits below read it: its JSON, with the fields they look at.
struct CheckpointView {
    let json: [String: Any]

    init?(_ data: Data) {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        self.json = json
    }

    var status: String? { json["status"] as? String }
    var pid: Int32? { (json["pid"] as? Int).map { Int32($0) } }
    var cursor: [String: Any] { json["cursor"] as? [String: Any] ?? [:] }
    /// Rows read over all runs up to the cursor.
    var rowsRead: Int { cursor["rowsRead"] as? Int ?? 0 }
    /// The cursor's byte offset in the current input (uncompressed for gzip).
    var offset: Int { cursor["offset"] as? Int ?? 0 }
    /// Which input file the cursor is in (0 for the first).
    var file: Int { cursor["file"] as? Int ?? 0 }
    var outputLength: Int { (json["output"] as? [String: Any])?["length"] as? Int ?? 0 }
    var gzip: [String: Any]? { json["gzip"] as? [String: Any] }
    /// The gzip member of the access point the checkpoint holds (1 for the first).
    var gzipMember: Int? { gzip?["member"] as? Int }
    var atMemberStart: Bool? { gzip?["atMemberStart"] as? Bool }
}

/// The checkpoint file `args` (a `run` command line) writes: `--checkpoint PATH`, or `OUTPUT.checkpoint`.
func checkpointName(_ args: [String]) -> String {
    if let i = args.firstIndex(of: "--checkpoint"), i + 1 < args.count { return args[i + 1] }
    if let i = args.firstIndex(of: "-o"), i + 1 < args.count { return args[i + 1] + ".checkpoint" }
    return "out.csv.checkpoint"
}

/// The checkpoint `name` in `scratch`, if there is one.
func readCheckpoint(_ scratch: Scratch, _ name: String) -> CheckpointView? {
    (try? scratch.read(name)).flatMap(CheckpointView.init)
}

/// The events of the events file `name` in `scratch` (its complete lines; the last one may be
/// being written).
func readEvents(_ scratch: Scratch, _ name: String) -> [[String: Any]] {
    guard let text = try? scratch.text(name) else { return [] }
    return text.split(separator: "\n", omittingEmptySubsequences: true).dropLast(text.hasSuffix("\n") ? 0 : 1).compactMap {
        (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
}

/// A run did not reach the state a test waited for in time.
struct WaitTimedOut: Error, CustomStringConvertible {
    var description: String
}

/// How long a test waits at most for a run to show a state: far longer than any test's run takes
/// on a slow machine, so that a run that never gets there fails the test instead of hanging it.
let safetyTimeout = 120.0

/// Polls `shows` every 2 ms until it holds while `running` still runs (true), or the run ends
/// first (false). After `timeout` seconds it SIGKILLs the run and throws, saying what it waited for.
func waitUntil(_ running: Tool.Running, _ what: String, timeout: Double = safetyTimeout,
               _ shows: () -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while running.isRunning {
        if shows() { return running.isRunning }
        if Date() > deadline {
            running.signal(SIGKILL)
            _ = running.wait()
            throw WaitTimedOut(description: "the run did not show \(what) within \(Int(timeout)) s")
        }
        usleep(2000)
    }
    return false
}

/// Sends `sig` to `running` as soon as the checkpoint `name` shows, as written by this run
/// (its pid, status running), a state that `shows` accepts: whatever the machine's speed, the
/// signal lands once the run is where the test needs it. Returns false, without signalling,
/// when the run ended first; throws when it shows nothing of the kind within `timeout` seconds.
@discardableResult
func signalWhen(_ running: Tool.Running, _ sig: Int32, in scratch: Scratch, checkpoint name: String,
                _ what: String, timeout: Double = safetyTimeout,
                shows: (CheckpointView) -> Bool = { _ in true }) throws -> Bool {
    let reached = try waitUntil(running, "a checkpoint with \(what) (\(name))", timeout: timeout) {
        guard let cp = readCheckpoint(scratch, name), cp.pid == running.pid, cp.status == "running" else { return false }
        return shows(cp)
    }
    if reached { running.signal(sig) }
    return reached
}

/// Sends `sig` to `running` as soon as the events file `name` holds events that `shows`
/// accepts. Returns false, without signalling, when the run ended first; throws when the events
/// show nothing of the kind within `timeout` seconds.
@discardableResult
func signalWhen(_ running: Tool.Running, _ sig: Int32, in scratch: Scratch, events name: String,
                _ what: String, timeout: Double = safetyTimeout,
                shows: ([[String: Any]]) -> Bool) throws -> Bool {
    let reached = try waitUntil(running, "events with \(what) (\(name))", timeout: timeout) {
        shows(readEvents(scratch, name))
    }
    if reached { running.signal(sig) }
    return reached
}

/// Starts `args` and stops the run with `sig` (SIGTERM unless told) as soon as its checkpoint
/// shows `what` (see ``signalWhen(_:_:in:checkpoint:_:timeout:shows:)``); returns the run's
/// result. A run that ended before showing it is recorded as an issue.
func stopWhen(_ args: [String], in scratch: Scratch, signal sig: Int32 = SIGTERM, _ what: String,
              shows: (CheckpointView) -> Bool) throws -> Tool.Result {
    let running = try Tool.start(args, in: scratch.url)
    let signalled = try signalWhen(running, sig, in: scratch, checkpoint: checkpointName(args), what, shows: shows)
    let r = running.wait()
    if !signalled { Issue.record("the run ended (status \(r.status)) before its checkpoint showed \(what): \(r.stderr)") }
    return r
}

/// Whether signal `sig` sent to process `pid` is no longer pending: a handler has taken it.
func signalTaken(_ sig: Int32, by pid: Int32) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return true }
    let bit = UInt64(1) << UInt64(sig - 1)
    for line in status.split(separator: "\n") where line.hasPrefix("ShdPnd:") || line.hasPrefix("SigPnd:") {
        let mask = UInt64(line.split(separator: "\t").last.map(String.init) ?? "0", radix: 16) ?? 0
        if mask & bit != 0 { return false }
    }
    return true
}

/// Whether the main thread of process `pid` is asleep in `nanosleep` (Linux): in a job whose
/// first checkpoint is written, that is a row's `delay:` under way.
func sleepsInARow(_ pid: Int32) -> Bool {
    let task = "/proc/\(pid)/task/\(pid)"
    if let wchan = try? String(contentsOfFile: "\(task)/wchan", encoding: .utf8), wchan.contains("nanosleep") { return true }
    guard let syscall = try? String(contentsOfFile: "\(task)/syscall", encoding: .utf8),
          let number = syscall.split(separator: " ").first.flatMap({ Int($0) }) else { return false }
    #if arch(x86_64)
    return number == 230 || number == 35      // clock_nanosleep, nanosleep
    #elseif arch(arm64)
    return number == 115 || number == 101
    #else
    return false
    #endif
}

/// Waits until `running` has written its first checkpoint and its main thread sleeps in a row's
/// `delay:` (a signal then lands inside that row); false when the run ended first.
func waitUntilInARow(_ running: Tool.Running, in scratch: Scratch, checkpoint name: String) throws -> Bool {
    try waitUntil(running, "its first checkpoint, then a row under way") {
        readCheckpoint(scratch, name)?.pid == running.pid && sleepsInARow(running.pid)
    }
}
