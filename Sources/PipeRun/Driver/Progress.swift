/// How a job shows its progress on standard error.
public enum ProgressMode: String, Sendable, CaseIterable {
    /// A live line on a terminal, a periodic log line otherwise.
    case auto
    /// A live line, redrawn a few times a second and cleared at the end.
    case bar
    /// A plain line every few seconds.
    case log
    /// Nothing but the one-line notices.
    case none
}

/// What a progress line shows.
struct ProgressSnapshot {
    var rowsRead: Int64
    var rowsWritten: Int64
    /// Bytes of input processed in this run (uncompressed), for the rate.
    var bytesThisRun: Int64
    /// Position and total of the file itself (compressed bytes for gzip), for percent and ETA.
    var position: Int64
    var total: Int64
    /// Where this run started in the file, for the ETA.
    var startPosition: Int64
    var seconds: Double
}

/// Draws the progress line. Writes go straight to file descriptor 2.
final class ProgressReporter {
    let bar: Bool
    let enabled: Bool
    let interval: UInt64
    private var next: UInt64 = 0
    private var shown = false

    init(mode: ProgressMode, logEvery seconds: Double) {
        let terminal = isatty(2) == 1
        switch mode {
        case .auto: bar = terminal; enabled = true
        case .bar: bar = true; enabled = true
        case .log: bar = false; enabled = true
        case .none: bar = false; enabled = false
        }
        interval = bar ? 250_000_000 : nanoseconds(max(seconds, 0.1))
        next = monotonicNanoseconds().addingSaturating(interval)
    }

    /// Whether a line is due now.
    func isDue(_ now: UInt64) -> Bool {
        enabled && now >= next
    }

    func show(_ s: ProgressSnapshot, now: UInt64) {
        next = now.addingSaturating(interval)
        let text = Self.describe(s)
        if bar {
            write("\r\u{1B}[2K" + text)
            shown = true
        } else {
            write("pipe-run: progress: " + text + "\n")
        }
    }

    /// Removes the live line (before a notice, and at the end).
    func clear() {
        if shown {
            write("\r\u{1B}[2K")
            shown = false
        }
    }

    static func describe(_ s: ProgressSnapshot) -> String {
        var parts: [String] = []
        if s.total > 0 {
            let percent = min(100, Double(s.position) * 100 / Double(s.total))
            parts.append(String(format1: percent) + "%")
        }
        parts.append("\(s.rowsRead) rows read, \(s.rowsWritten) written")
        if s.seconds > 0 {
            parts.append(String(format1: Double(s.bytesThisRun) / s.seconds / 1e6) + " MB/s")
            parts.append("\(Int(Double(s.rowsRead) / max(s.seconds, 0.001))) rows/s")
        }
        parts.append("elapsed " + duration(s.seconds))
        let done = s.position - s.startPosition
        if s.total > 0, done > 0, s.seconds > 0.5 {
            let eta = Double(s.total - s.position) * s.seconds / Double(done)
            parts.append("ETA " + duration(eta))
        }
        return parts.joined(separator: ", ")
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
    }
}

/// `1h02m`, `3m07s`, `12s`.
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(twoDigits((s % 3600) / 60))m" }
    if s >= 60 { return "\(s / 60)m\(twoDigits(s % 60))s" }
    return "\(s)s"
}

private func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

extension String {
    /// One decimal, e.g. 42.1.
    init(format1 value: Double) {
        guard value.isFinite else { self = "?"; return }
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
