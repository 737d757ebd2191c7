/// What `pipe-run status` reports about a job, read from its checkpoint without changing
/// anything (it works while the job runs).
public struct JobStatus: Codable, Sendable {
    /// `running`, `interrupted`, `complete` or `failed`.
    public var state: String
    /// The process running the job, when ``state`` is `running`.
    public var pid: Int32?
    /// Why it stopped, when it did not complete.
    public var reason: String?
    public var input: String
    public var output: String
    public var checkpoint: String
    /// Input bytes (compressed for gzip) before the cursor, and the input's size.
    public var position: Int64
    public var size: Int64
    public var percent: Double?
    public var rowsRead: Int64
    public var rowsWritten: Int64
    public var badRows: Int64
    /// When the job started, and when its last checkpoint was written (UTC, ISO 8601).
    public var startedAt: String
    public var lastCheckpointAt: String
    /// Input bytes per second, from the recorded checkpoints; nil before there are two.
    public var bytesPerSecond: Double?
    public var etaSeconds: Double?
    public var runs: Int
    public var interruptions: Int
    /// Seconds the job has run, over all its runs.
    public var runSeconds: Double
    /// For a job over ranges (`--jobs`): how many ranges there are, and how many are done.
    public var ranges: Int?
    public var rangesDone: Int?
    /// The pipe-run that wrote the checkpoint (nil before 0.11.0), and this one.
    public var writerVersion: String?
    public var version: String

    /// Reads the checkpoint at `path`.
    public static func read(checkpointPath path: String) throws -> JobStatus {
        guard let cp = try CheckpointStore(path: path).load() else {
            throw PipeRunError(.noInput, "no checkpoint at \(path): the job has not started, or ran to standard output")
        }
        var state = cp.status.rawValue
        var pid: Int32? = nil
        var reason = cp.reason
        if cp.completion != nil && !isLocked(cp.output.path) {
            state = Checkpoint.Status.interrupted.rawValue
            reason = "the machine restarted after the job ended, before its output was known to be on the disk; run the same command to check the output (and write again what was lost)"
        } else if cp.status == .running || cp.completion != nil {
            // The running job holds a lock on its output.
            if isLocked(cp.output.path) {
                // (The pid of a recorded end's synced state is that of the run that ended it.)
                pid = cp.completion == nil ? cp.pid : nil
            } else {
                state = Checkpoint.Status.interrupted.rawValue
                reason = "killed (the run that wrote the checkpoint, pid \(cp.pid), is gone)"
            }
        }
        // Over all input files: the ones before the cursor's, then the cursor in its own.
        let files = cp.inputs ?? [cp.input]
        let current = min(cp.cursor.file ?? 0, max(files.count - 1, 0))
        let size = files.reduce(0) { $0 + $1.size }
        // A job over ranges: the input bytes processed in all ranges.
        let position = cp.status == .complete ? size
            : cp.ranges.map { min($0.processedInputBytes, size) }
            ?? files.prefix(current).reduce(0) { $0 + $1.size } + cp.cursor.inputOffset
        var rate: Double? = nil
        let samples = cp.history ?? []
        if samples.count >= 2, let last = samples.last {
            // The recent rate: back from the last sample while the checkpoints are close together
            // (a long gap means the job was not running).
            var first = samples.count - 1
            while first > 0, last.time - samples[first - 1].time < 600,
                  samples[first].time - samples[first - 1].time < 120 {
                first -= 1
            }
            let span = last.time - samples[first].time
            if span > 0 { rate = Double(last.inputOffset - samples[first].inputOffset) / span }
        }
        if rate == nil || rate! <= 0, let seconds = cp.elapsedSeconds, seconds > 0, position > 0 {
            rate = Double(position) / seconds
        }
        var eta: Double? = nil
        if cp.status != .complete, let rate, rate > 0 { eta = Double(max(0, size - position)) / rate }
        return JobStatus(
            state: state, pid: pid, reason: reason,
            input: files.count > 1 ? "\(cp.input.path) (input \(current + 1) of \(files.count))" : cp.input.path,
            output: cp.output.path, checkpoint: path,
            position: position, size: size,
            percent: cp.status == .complete ? 100 : (size > 0 ? (Double(position) * 1000 / Double(size)).rounded() / 10 : nil),
            rowsRead: cp.cursor.rowsRead, rowsWritten: cp.cursor.rowsWritten, badRows: cp.cursor.badRows,
            startedAt: cp.createdAt, lastCheckpointAt: cp.updatedAt, bytesPerSecond: rate, etaSeconds: eta,
            runs: cp.runs, interruptions: cp.interruptions, runSeconds: cp.elapsedSeconds ?? 0,
            ranges: cp.ranges?.ranges.count, rangesDone: cp.ranges.map { cp.status == .complete ? $0.ranges.count : $0.appended },
            writerVersion: cp.writerVersion, version: pipeRunVersion)
    }

    /// The report for people.
    public var text: String {
        var lines: [(String, String)] = []
        var stateText = state
        if let pid { stateText += " (pid \(pid))" }
        if let reason { stateText += ": \(reason)" }
        lines.append(("state", stateText))
        lines.append(("input", input))
        lines.append(("output", output))
        let percentText = percent.map { String(format1: $0) + "%" } ?? "?"
        var progressText = "\(percentText), byte \(position) of \(size) (input bytes, compressed for gzip); \(rowsRead) rows read, \(rowsWritten) written, \(badRows) bad"
        if let ranges, let rangesDone { progressText += "; \(rangesDone) of \(ranges) ranges done" }
        lines.append(("progress", progressText))
        lines.append(("started", startedAt))
        lines.append(("checkpoint", "\(lastCheckpointAt) (\(checkpoint))"))
        if let bytesPerSecond {
            var rateText = String(format1: bytesPerSecond / 1e6) + " MB/s of input"
            if let etaSeconds { rateText += ", ETA " + duration(etaSeconds) }
            lines.append(("rate", rateText))
        }
        lines.append(("written by", writerVersion.map { "pipe-run \($0)" } ?? "pipe-run before 0.11.0"))
        lines.append(("runs", "\(runs) (\(interruptions) interruption\(interruptions == 1 ? "" : "s")), \(duration(runSeconds)) of run time"))
        return lines.map { $0.0.padded(to: 12) + $0.1 }.joined(separator: "\n")
    }
}

/// Whether another process holds the job lock on `path` (the output of a running job).
func isLocked(_ path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    if flock(fd, LOCK_SH | LOCK_NB) == 0 {
        flock(fd, LOCK_UN)
        return false
    }
    return errno == EWOULDBLOCK
}

extension String {
    func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
