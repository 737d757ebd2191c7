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

        func signal(_ sig: Int32) {
            kill(process.processIdentifier, sig)
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

/// Runs `args` again and again, SIGKILLing each run after a random delay (milliseconds, from
/// `delays`), until a run finishes by itself; after `maxKills` kills the next run may finish
/// (or, with `finishing: false`, none is started). `afterKill` sees each killed run's result
/// (and can look at the files it left). Returns how many runs were killed; a run that finished
/// must exit 0.
@discardableResult
func killRepeatedly(_ args: [String], in scratch: Scratch, seed: UInt64, maxKills: Int, delays: ClosedRange<Int>,
                    finishing: Bool = true, afterKill: (Tool.Result) throws -> Void = { _ in }) throws -> Int {
    var rng = SplitMix(seed: seed)
    var kills = 0
    while true {
        if kills == maxKills && !finishing { return kills }
        let running = try Tool.start(args, in: scratch.url)
        if kills < maxKills {
            usleep(UInt32((delays.lowerBound + Int(rng.next() % UInt64(delays.count))) * 1000))
            if running.isRunning {
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

/// Starts `args` and SIGKILLs the run as soon as the checkpoint file `checkpoint` holds text
/// that `shows` accepts (polled every 2 ms), so a test can kill at a chosen stage of a job
/// whatever the machine's speed. Returns the killed run, or nil when the run ended first (it
/// must then have exited 0).
func killWhenCheckpoint(_ args: [String], in scratch: Scratch, checkpoint: String,
                        shows: (String) -> Bool) throws -> Tool.Result? {
    let running = try Tool.start(args, in: scratch.url)
    while running.isRunning {
        if let text = try? scratch.text(checkpoint), shows(text) {
            running.signal(SIGKILL)
            let r = running.wait()
            if r.signaled { return r }
            #expect(r.status == 0, "run ended with \(r.status): \(r.stderr)")
            return nil
        }
        usleep(2000)
    }
    let r = running.wait()
    #expect(r.status == 0, "run ended with \(r.status): \(r.stderr)")
    return nil
}
