/// What a run tells the user and the events stream: progress, positions, the summary, and
/// failures as documented exit statuses. Process-wide, so it stays with the runner and out of
/// the row loop.
extension JobRunner {
    func makeEvent(_ name: String) -> EventLog.Event {
        EventLog.Event(
            event: name, time: isoTimestamp(), runSeconds: Double(monotonicNanoseconds() - runStarted) / 1e9,
            offset: loop?.reader.cursor ?? 0, line: loop?.reader.cursorLine ?? 1, rowsRead: loop?.rowsRead ?? 0,
            rowsWritten: loop?.rowsWritten ?? 0, badRows: loop?.badRows ?? 0,
            percent: percentDone)
    }

    private var percentDone: Double? {
        guard let inputs, inputs.file.isSeekable, inputs.totalSize > 0 else { return nil }
        return (Double(progressPosition) * 1000 / Double(inputs.totalSize)).rounded() / 10
    }

    /// How far through the input files this run is (compressed bytes for gzip).
    var progressPosition: Int64 {
        guard let inputs else { return 0 }
        // (Read from another thread than the one decompressing.)
        if let gzip = inputs.gzip { return inputs.sizeOfEarlierFiles + gzip.compressedBytesRead }
        return inputs.sizeOfEarlierFiles + (loop?.reader.cursor ?? 0)
    }

    func snapshot() -> ProgressSnapshot {
        let inputs = inputs!, loop = loop!
        return ProgressSnapshot(rowsRead: loop.rowsRead, rowsWritten: loop.rowsWritten,
                                bytesThisRun: inputs.bytesOfEarlierFiles + loop.reader.cursor - bytesBeforeThisRun,
                                position: progressPosition, total: inputs.file.isSeekable ? inputs.totalSize : 0,
                                startPosition: startPosition, seconds: Double(monotonicNanoseconds() - runStarted) / 1e9)
    }

    /// "byte B of S (P%)", or for gzip "byte B (compressed byte C of S, P%)"; with several
    /// inputs, which one.
    func position(_ offset: Int64, compressed: Int64) -> String {
        let inputs = inputs!
        let size = inputs.file.size
        var text: String
        if inputs.gzip != nil {
            text = "byte \(offset) (compressed byte \(compressed) of \(size), \(percent(compressed, of: size))%)"
        } else {
            text = "byte \(offset) of \(size) (\(percent(offset, of: size))%)"
        }
        if inputs.paths.count > 1 {
            text += " of \(inputs.file.path) (input \(inputs.index + 1) of \(inputs.paths.count))"
        }
        return text
    }

    private func percent(_ offset: Int64, of size: Int64) -> String {
        guard size > 0 else { return "100.0" }
        let tenths = Double(offset) * 1000 / Double(size)
        return String(Double(Int(tenths)) / 10)
    }

    /// "done: R rows read, W written; M MB in T over N runs (I interruptions), S MB/s".
    func summary() -> String {
        let loop = loop!
        var summary = "done: \(loop.rowsRead) rows read, \(loop.rowsWritten) written"
        if loop.badRows > 0 { summary += ", \(loop.badRows) bad rows " + (options.onError == .skip ? "skipped" : "quarantined") }
        let seconds = totalSeconds
        let megabytes = Double(inputs!.bytesOfEarlierFiles + loop.reader.cursor) / 1e6
        summary += "; \(String(format1: megabytes)) MB in \(duration(seconds))"
        if let runs, runs.count > 1 {
            summary += " over \(runs.count) runs (\(runs.interruptions) interruption\(runs.interruptions == 1 ? "" : "s"))"
        }
        if seconds > 0 { summary += ", \(String(format1: megabytes / seconds)) MB/s" }
        return summary
    }

    func reportBadRecord(_ bad: MalformedRecord) {
        guard let events else { return }
        var event = makeEvent("bad-row")
        event.reason = bad.reason
        event.badLine = bad.line
        event.badOffset = bad.offset
        events.write(event)
    }

    /// `error` as it leaves the runner: a ``PipeRunError`` with a documented exit status (or
    /// ``OutputClosed``), reported as a `failed` event.
    func reported(failure error: any Error) -> any Error {
        let failure: any Error
        switch error {
        case is PipeRunError, is OutputClosed: failure = error
        case is ReadInterrupted:
            failure = PipeRunError(.interrupted, "interrupted while reading; the last checkpoint stays valid, run the same command to resume")
        case let fatal as FatalTransformError: failure = PipeRunError(.dataError, fatal.message)
        default: failure = PipeRunError(.dataError, "\(error)")
        }
        if let events, let failure = failure as? PipeRunError {
            var event = makeEvent("failed")
            event.reason = failure.message
            events.write(event)
        }
        return failure
    }
}

/// Seconds as nanoseconds, saturating instead of overflowing.
func nanoseconds(_ seconds: Double) -> UInt64 {
    guard seconds > 0 else { return 0 }
    let n = seconds * 1e9
    return n >= 1.8e19 || n.isNaN ? UInt64.max : UInt64(n)
}

extension UInt64 {
    func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
