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

    /// Starts `pipe-run ARGS` in `dir` as a shell or a service manager would: default actions
    /// for the stop signals and none blocked (a test runner's threads may block them, and a
    /// child inherits its parent's mask), standard error to `stderr`. Returns its pid.
    static func spawn(_ args: [String], in dir: URL, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, dir.appendingPathComponent(stderr).path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, sig) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([Tool.path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let cwd = FileManager.default.currentDirectoryPath
        // (posix_spawn has no working-directory action in this glibc's Swift overlay: the
        // arguments are relative to `dir`, so the child starts there.)
        FileManager.default.changeCurrentDirectoryPath(dir.path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, Tool.path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        return pid
    }

    /// Sends `sig` to a run `delay` after it was started, but not before the program holds or
    /// catches it (shown by /proc): the dynamic loader runs before any code of ours, and on a
    /// busy or slow machine it alone can take longer than the delay. Returns the run's exit
    /// status (nil when the signal killed it), what it wrote on standard error, and whether the
    /// signal was seen blocked, as it is from before `main` until the handlers are installed (a
    /// program that does not block it meets the signal unprepared there).
    static func signal(_ sig: Int32, after delay: Double, _ args: [String],
                       in scratch: Scratch) throws -> (status: Int32?, stderr: String, sawBlocked: Bool) {
        let started = Date()
        let pid = try spawn(args, in: scratch.url, stderr: "stderr.txt")
        let bit = UInt64(1) << UInt64(sig - 1)
        let due = started.addingTimeInterval(delay)
        var sawBlocked = false
        while let blocked = signalMask("SigBlk", pid: pid), let caught = signalMask("SigCgt", pid: pid) {
            sawBlocked = sawBlocked || blocked & bit != 0
            if (blocked | caught) & bit != 0 {
                let wait = due.timeIntervalSinceNow
                if wait > 0 { usleep(UInt32(wait * 1e6)) }
                kill(pid, sig)
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let stderr = (try? scratch.text("stderr.txt")) ?? ""
        // WIFEXITED / WEXITSTATUS
        return (status & 0x7f == 0 ? (status >> 8) & 0xff : nil, stderr, sawBlocked)
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
        var blockedBeforeHandlers = 0
        for _ in 0..<30 {
            let delay = 0.002 + Double(rng.next() % 8001) / 1e6
            let (status, stderr, sawBlocked) = try Self.signal(sig, after: delay, args, in: scratch)
            if sawBlocked { blockedBeforeHandlers += 1 }
            guard let status else {
                Issue.record("killed by the signal \(delay * 1000) ms after exec: \(stderr)")
                continue
            }
            #expect(status == 75 || status == 0, "exit \(status) for a signal \(delay * 1000) ms after exec: \(stderr)")
            outcomes[status, default: 0] += 1
            if status == 0 && !stderr.contains("already complete") {
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
        // Signals do reach the program while it holds them, before its handlers exist.
        #expect(blockedBeforeHandlers > 0, "no run held the stop signals before installing its handlers")
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
