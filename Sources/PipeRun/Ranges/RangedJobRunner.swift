import Synchronization

/// Runs a job over ranges of its input side by side (`--jobs N`), with the guarantees of a run
/// in one piece: the output is exactly what a run in input order writes, once, through any
/// crash; a stop signal commits every range; errors name the file, line and byte.
///
/// The coordinator (this type, on the calling thread) owns the checkpoint and the order of the
/// output; each range runs on a ``RangeWorker`` of its own. In order:
/// 1. The range at the frontier (every range before it appended) runs *in order*: from the
///    frontier's offset, line and transform states, straight into the output. With `--jobs 1`
///    every range runs so, one after the other: a run in one piece.
/// 2. Up to N-1 later ranges run *ahead*, each from a fresh state into a segment file beside
///    the checkpoint, from a record start guessed near its nominal start (``RecordStart``).
/// 3. When a range at the frontier is done, it is appended: a range run ahead is proven right
///    if its first record is where the range before it ended and every stateful transform
///    combines (``RowTransform/combine(earlier:later:)``); then its segment is copied to the
///    output, its quarantine lines get their true line numbers, and the frontier moves on.
///    A range proven wrong is run again, in order.
/// 4. Every commit of a worker (its files synced first) and every append is followed by a
///    checkpoint that names only synced bytes; a resumed run cuts the output and every segment
///    back to what it names.
/// 5. At the end, the transforms' `finish` runs on a chain restored with the frontier's
///    states, and the end is committed as in a run in one piece (``Checkpoint/completion``).
final class RangedJobRunner {
    let job: Job
    let registry: TransformRegistry
    let store: CheckpointStore
    let output: OutputFile
    let quarantine: OutputFile?
    let paths: [String]
    let columns: Columns
    let format: RecordFormat
    let outputDelimiter: UInt8
    let jobs: Int
    /// The reader that read the header (unused since), for the chain that finishes the job.
    let headerReader: RecordReader
    /// A chain started with the input's columns: it combines the ranges' states, and finishes
    /// the job restored with the frontier's.
    let chain: [any RowTransform]
    private(set) var checkpoint: Checkpoint
    private var lastSynced: Checkpoint?
    private var ranged: RangedProgress {
        get { checkpoint.ranges! }
        set { checkpoint.ranges = newValue }
    }
    private let events: EventLog?
    private let progress: ProgressReporter?
    private let notice: (String) -> Void
    private let runStarted = monotonicNanoseconds()
    private let earlierSeconds: Double
    private let processedAtStart: Int64

    private let reports = ReportQueue()
    private let cancelled = Flag()
    private var active: [Int: RangeWorker] = [:]
    /// The threads that run the ranges, one per job: kept from range to range, so that each
    /// reuses the memory of the one before (buffers of several MiB, faulted in once).
    private var threads: WorkerThreads?
    /// Whether the checkpoint has news to save, and whether a worker committed since the last save.
    private var dirty = false
    private var committed = false
    /// Segments to delete once a saved checkpoint no longer names them.
    private var pendingUnlinks: [String] = []
    /// Bad records of ranges run ahead, for the events stream once their lines are known.
    private var heldBadRecords: [Int: [MalformedRecord]] = [:]

    init(job: Job, registry: TransformRegistry, store: CheckpointStore, output: OutputFile, quarantine: OutputFile?,
         paths: [String], columns: Columns, format: RecordFormat, outputDelimiter: UInt8, jobs: Int,
         headerReader: RecordReader, chain: [any RowTransform], checkpoint: Checkpoint, events: EventLog?,
         progress: ProgressReporter?, notice: @escaping (String) -> Void) {
        self.chain = chain
        self.job = job
        self.registry = registry
        self.store = store
        self.output = output
        self.quarantine = quarantine
        self.paths = paths
        self.columns = columns
        self.format = format
        self.outputDelimiter = outputDelimiter
        self.jobs = max(1, jobs)
        self.headerReader = headerReader
        self.checkpoint = checkpoint
        self.events = events
        self.progress = progress
        self.notice = notice
        earlierSeconds = checkpoint.elapsedSeconds ?? 0
        processedAtStart = checkpoint.ranges?.processedInputBytes ?? 0
    }

    func segmentPath(_ index: Int) -> String { "\(store.path).range-\(index)" }
    func quarantineSegmentPath(_ index: Int) -> String { "\(store.path).range-\(index).quarantine" }

    // MARK: Running

    /// Runs the ranges to the end of the job, to a stop, or to an error.
    func run() throws -> JobOutcome {
        let threads = try WorkerThreads(count: min(jobs, ranged.ranges.count))
        self.threads = threads
        defer { threads.finish() }
        try save(.running)
        events?.write(event(checkpoint.runs > 1 ? "resumed" : "started"))
        let start = monotonicNanoseconds()
        let deadline = job.options.maxRuntime.map { start.addingSaturating(nanoseconds($0)) } ?? UInt64.max
        var stopReason: String?
        var failure: (MalformedRecord, Int)?
        var fatal: (any Error)?
        do {
            try startWorkers()
            while true {
                for report in reports.wait(timeoutNanoseconds: 10_000_000) {
                    switch try handle(report) {
                    case .none: break
                    case .failed(let bad, let index): failure = (bad, index)
                    case .error(let error): fatal = fatal ?? error
                    }
                }
                if failure == nil && fatal == nil && stopReason == nil { try appendDone() }
                if dirty {
                    // One save for all the reports and appends of this turn.
                    try save(.running)
                    if committed { events?.write(event("checkpoint")) }
                    (dirty, committed) = (false, false)
                }
                let signal = receivedStopSignal.load(ordering: .relaxed)
                if stopReason == nil && failure == nil && fatal == nil {
                    if signal != 0 {
                        stopReason = StopSignals.name(signal)
                    } else if monotonicNanoseconds() >= deadline {
                        stopReason = "--max-runtime"
                    }
                }
                let ended = ranged.frontier.endedJob || ranged.appended == ranged.ranges.count
                if stopReason != nil || failure != nil || fatal != nil || ended { cancelled.set() }
                if active.isEmpty {
                    if let fatal { throw fatal }
                    if let (bad, index) = failure { try fail(at: bad, range: index) }
                    if let stopReason { return try interrupt(stopReason) }
                    if ended { return try complete() }
                }
                if !cancelled.isSet { try startWorkers() }
                if let progress {
                    let now = monotonicNanoseconds()
                    if progress.isDue(now) { progress.show(snapshot(), now: now) }
                }
            }
        } catch {
            // Every worker stops and commits what it can before the error is reported.
            cancelled.set()
            while !active.isEmpty {
                for report in reports.wait(timeoutNanoseconds: 10_000_000) { _ = try? handle(report) }
            }
            throw error
        }
    }

    /// Starts workers on the next ranges while fewer than `jobs` run: the range at the frontier
    /// in order, later ones ahead (at most a few more than `jobs` past the frontier, so that
    /// segments do not pile up on the disk).
    private func startWorkers() throws {
        let ranges = ranged.ranges
        let appended = ranged.appended
        var index = appended
        while active.count < jobs && index < min(ranges.count, appended + 2 * jobs) {
            defer { index += 1 }
            guard active[index] == nil else { continue }
            let range = ranges[index]
            if let run = range.run, run.done { continue }
            if range.skipped == true { continue }
            var assignment = RangeWorker.Assignment(index: index, range: range, path: paths[range.file],
                                                    run: range.run ?? freshRun(range), positioned: range.run != nil,
                                                    outputLength: checkpoint.output.length,
                                                    quarantineLength: checkpoint.quarantine?.length ?? 0)
            if range.run == nil && index == appended {
                // At the frontier: in order, from where the range before it ended.
                let f = ranged.frontier
                let startsFile = index == 0 || ranges[index - 1].file != range.file
                assignment.run = freshRun(range, mode: .inOrder)
                if !startsFile {
                    (assignment.run.readFrom, assignment.run.offset, assignment.run.line) = (f.offset, f.offset, f.line)
                    assignment.run.readFromLine = f.line
                    assignment.positioned = true
                } else if range.start != 0 {
                    assignment.positioned = false
                }
                assignment.run.transformStates = f.transformStates
            } else if range.run == nil && mustRunInOrder.contains(index) {
                continue
            }
            try launch(assignment)
        }
    }

    /// Ranges that misfired ahead: they run again when they reach the frontier.
    private var mustRunInOrder: Set<Int> = []
    /// Ranges run ahead that had to run again, in this run: proven wrong when appended (a
    /// start guessed wrong, or a transform that did not combine), or misfired.
    private(set) var rangesRunAgain = 0

    private func freshRun(_ range: InputRange, mode: RangeRun.Mode = .ahead) -> RangeRun {
        RangeRun(mode: mode, readFrom: range.start, readFromLine: 1, firstOffset: nil, firstLine: nil, offset: range.start,
                 line: 1, gzip: nil, rowsRead: 0, rowsWritten: 0, badRows: 0, inputBytes: 0, done: false, endedJob: false,
                 segment: nil, quarantineSegment: nil,
                 transformStates: Array(repeating: nil, count: job.options.transforms.count))
    }

    private func launch(_ assignment: RangeWorker.Assignment) throws {
        if assignment.run.mode == .ahead && assignment.run.segment == nil {
            unlink(segmentPath(assignment.index))
            unlink(quarantineSegmentPath(assignment.index))
        }
        let queue = reports
        let identities = checkpoint.inputs ?? [checkpoint.input]
        let worker = RangeWorker(job: job, registry: registry, identity: identities[assignment.range.file],
                                 columns: columns, format: format,
                                 outputDelimiter: outputDelimiter, segmentPath: segmentPath,
                                 quarantineSegmentPath: quarantineSegmentPath, output: output, quarantine: quarantine,
                                 cancelled: cancelled, report: { queue.post($0) })
        worker.parseAhead = jobs == 1
        active[assignment.index] = worker
        threads!.submit { worker.run(assignment) }
    }

    private enum Handled {
        case none
        case failed(MalformedRecord, Int)
        case error(any Error)
    }

    /// Takes a worker's report into the checkpoint (saved when it changed what is durable).
    private func handle(_ report: RangeWorker.Report) throws -> Handled {
        func finished(_ index: Int) {
            active.removeValue(forKey: index)
        }
        switch report {
        case .progress(let index, let run, let bad):
            try take(run, of: index, bad)
            (dirty, committed) = (true, true)
        case .finished(let index, let run, let bad), .stopped(let index, let run, let bad):
            finished(index)
            try take(run, of: index, bad)
            dirty = true
        case .misfired(let index, _):
            finished(index)
            ranged.ranges[index].run = nil
            heldBadRecords[index] = nil
            unlink(segmentPath(index))
            unlink(quarantineSegmentPath(index))
            mustRunInOrder.insert(index)
            dirty = true
            rangesRunAgain += 1
        case .failed(let index, let run, let bad):
            finished(index)
            try take(run, of: index, [])
            return .failed(bad, index)
        case .inputChanged(let index, let problem):
            finished(index)
            let file = ranged.ranges[index].file
            let started = ranged.ranges.indices.contains { i in
                ranged.ranges[i].file == file && (i < ranged.appended || ranged.ranges[i].run != nil || active[i] != nil)
            }
            guard job.options.skipChangedInputs, !started else {
                return .error(PipeRunError(.dataError, "\(problem); rerun with --skip-changed-inputs to leave it out, or --restart"))
            }
            notice("skipping: \(problem)")
            for i in ranged.ranges.indices where ranged.ranges[i].file == file { ranged.ranges[i].skipped = true }
            dirty = true
        case .error(let index, let error):
            finished(index)
            return .error(error)
        }
        return .none
    }

    private func take(_ run: RangeRun, of index: Int, _ bad: [MalformedRecord]) throws {
        ranged.ranges[index].run = run
        if run.mode == .inOrder {
            if let length = run.segment?.length { checkpoint.output = try outputState(output, length: length) }
            if let q = quarantine, let length = run.quarantineSegment?.length {
                checkpoint.quarantine = try outputState(q, length: length)
            }
            for record in bad { reportBadRecord(record, lineShift: 0) }
        } else {
            heldBadRecords[index, default: []] += bad
        }
    }

    // MARK: Appending

    /// Appends, in order, the ranges at the frontier that are done.
    private func appendDone() throws {
        while ranged.appended < ranged.ranges.count && !ranged.frontier.endedJob {
            let index = ranged.appended
            let range = ranged.ranges[index]
            if range.skipped == true {
                ranged.appended = index + 1
                dirty = true
                continue
            }
            guard let run = range.run, run.done, active[index] == nil else { return }
            var frontier = ranged.frontier
            let startsFile = index == 0 || ranged.ranges[index - 1].file != range.file
            if run.mode == .inOrder {
                frontier.transformStates = run.transformStates
                frontier.offset = run.offset
                frontier.line = run.line
            } else {
                // Proven when its first record is where the range before it ended, and every
                // stateful transform combines.
                let first = run.firstOffset ?? run.offset
                let shift = startsFile ? 0 : frontier.line - (run.firstLine ?? run.line)
                var states = frontier.transformStates
                var proven = startsFile || first == frontier.offset
                if proven { proven = try combine(into: &states, run.transformStates) }
                guard proven else {
                    rangesRunAgain += 1
                    ranged.ranges[index].run = nil
                    heldBadRecords[index] = nil
                    unlink(segmentPath(index))
                    unlink(quarantineSegmentPath(index))
                    dirty = true
                    return
                }
                try appendSegment(index, run, lineShift: shift)
                for record in heldBadRecords.removeValue(forKey: index) ?? [] { reportBadRecord(record, lineShift: shift) }
                frontier.transformStates = states
                frontier.offset = run.offset
                frontier.line = run.line + shift
            }
            frontier.rowsRead += run.rowsRead
            frontier.rowsWritten += run.rowsWritten
            frontier.badRows += run.badRows
            frontier.endedJob = run.endedJob
            frontier.inputBytes += run.inputBytes
            frontier.bytes += run.offset - run.readFrom
            ranged.frontier = frontier
            ranged.appended = index + 1
            ranged.ranges[index].run = nil
            dirty = true
            pendingUnlinks += [segmentPath(index), quarantineSegmentPath(index)]
        }
    }

    /// Folds a range's states (run from fresh ones) into the frontier's, stage by stage;
    /// false when a stage says the range must run again.
    private func combine(into states: inout [ExactBytes?], _ later: [ExactBytes?]) throws -> Bool {
        for (i, transform) in chain.enumerated() where transform.rangeSupport == .combinable {
            switch try transform.combine(earlier: states[i]?.bytes, later: later[i]?.bytes) {
            case .combined(let bytes): states[i] = bytes.map(ExactBytes.init)
            case .runAgain: return false
            }
        }
        return true
    }


    /// Copies range `index`'s segment to the end of the output, and its quarantine lines (with
    /// their line numbers shifted) to the quarantine file; syncs both.
    private func appendSegment(_ index: Int, _ run: RangeRun, lineShift: Int64) throws {
        if let segment = run.segment, segment.length > 0 {
            let length = try SegmentCopy.copy(from: segmentPath(index), count: segment.length, to: output, at: checkpoint.output.length)
            try output.sync()
            checkpoint.output = try outputState(output, length: length)
        }
        if let q = quarantine, let segment = run.quarantineSegment, segment.length > 0 {
            let start = checkpoint.quarantine?.length ?? 0
            let length: Int64
            if lineShift == 0 {
                length = try SegmentCopy.copy(from: quarantineSegmentPath(index), count: segment.length, to: q, at: start)
            } else {
                length = try SegmentCopy.copyQuarantine(from: quarantineSegmentPath(index), count: segment.length, to: q, at: start,
                                            lineShift: lineShift)
            }
            try q.sync()
            checkpoint.quarantine = try outputState(q, length: length)
        }
    }

    // MARK: Ending

    /// Stops the job at a bad record under `--on-error fail` in the range run in order.
    private func fail(at bad: MalformedRecord, range index: Int) throws -> Never {
        let location = "\(paths[ranged.ranges[index].file]): line \(bad.line), byte \(bad.errorOffset)"
        try save(.failed, reason: "\(location): \(bad.reason)")
        throw PipeRunError(.dataError, "\(location): \(bad.reason): \(bad.excerpt); fix the input or rerun with --on-error skip to resume from this record")
    }

    private func interrupt(_ reason: String) throws -> JobOutcome {
        checkpoint.interruptions += 1
        try save(.interrupted, reason: reason)
        let totals = self.totals
        notice("interrupted (\(reason)) at row \(totals.rowsRead)\(whichInput), \(ranged.appended) of \(ranged.ranges.count) ranges done; run the same command to resume")
        var e = event("interrupted")
        e.reason = reason
        events?.write(e)
        return .interrupted
    }

    /// The transforms finish on a chain restored with the frontier's states, and the end is
    /// committed: synced (`--sync`), or recorded beside the last synced checkpoint.
    private func complete() throws -> JobOutcome {
        let frontier = ranged.frontier
        for index in ranged.appended..<ranged.ranges.count {
            ranged.ranges[index].run = nil
            unlink(segmentPath(index))
            unlink(quarantineSegmentPath(index))
        }
        let transforms = chain
        let loop = RowLoop(reader: headerReader, transforms: transforms, specs: job.options.transforms,
                           policy: job.options.onError, header: job.header)
        loop.markStarted(columns)
        for (t, state) in zip(transforms, frontier.transformStates) {
            guard let state else { continue }
            try t.restoreState(state.bytes)
        }
        let segment = try OutputSegment(file: output, length: checkpoint.output.length, compress: job.compressOutput,
                                        level: job.options.compressionLevel, format: format, delimiter: outputDelimiter,
                                        quarantine: quarantine, quarantineLength: checkpoint.quarantine?.length ?? 0,
                                        quarantineHeader: false)
        loop.attach(segment)
        try loop.finish()
        let lengths = try segment.seal()
        ranged.frontier.rowsWritten += loop.rowsWritten
        ranged.frontier.transformStates = try transforms.map { t in try t.saveState().map(ExactBytes.init) }
        checkpoint.output = try outputState(output, length: lengths.output)
        if let q = quarantine, let length = lengths.quarantine { checkpoint.quarantine = try outputState(q, length: length) }
        if job.options.syncAtEnd || lastSynced == nil {
            try segment.sync()
            try save(.complete)
        } else {
            let synced = lastSynced!
            try output.drain()
            try quarantine?.drain()
            let done = prepared(.complete, reason: nil)
            guard let crc = try RecordedEnd.crc32(fd: output.fd, path: output.path, from: synced.output.length,
                                                  to: checkpoint.output.length) else {
                throw PipeRunError(.ioError, "output \(output.path) is shorter than written")
            }
            var quarantineCRC: UInt32? = nil
            if let q = quarantine, let length = checkpoint.quarantine?.length {
                quarantineCRC = try RecordedEnd.crc32(fd: q.fd, path: q.path, from: synced.quarantine?.length ?? 0, to: length)
            }
            try store.save(synced.recording(completion: done, bootID: currentBootID() ?? "", outputCRC32: crc,
                                            quarantineCRC32: quarantineCRC), durably: false)
            checkpoint = done
        }
        let totals = self.totals
        var summary = "done: \(totals.rowsRead) rows read, \(totals.rowsWritten) written"
        if totals.badRows > 0 { summary += ", \(totals.badRows) bad rows " + (job.options.onError == .skip ? "skipped" : "quarantined") }
        let seconds = totalSeconds
        var bytes = ranged.frontier.bytes
        for r in ranged.ranges { if let run = r.run { bytes += run.offset - run.readFrom } }
        let megabytes = Double(bytes) / 1e6
        summary += "; \(String(format1: megabytes)) MB in \(duration(seconds))"
        if checkpoint.runs > 1 {
            summary += " over \(checkpoint.runs) runs (\(checkpoint.interruptions) interruption\(checkpoint.interruptions == 1 ? "" : "s"))"
        }
        summary += ", \(ranged.ranges.count) ranges, --jobs \(jobs)"
        if rangesRunAgain > 0 { summary += " (\(rangesRunAgain) run again in order)" }
        notice(summary)
        var completed = event("completed")
        completed.outputLength = checkpoint.output.length
        events?.write(completed)
        return .completed
    }

    // MARK: Checkpoints and reporting

    private var totalSeconds: Double { earlierSeconds + Double(monotonicNanoseconds() - runStarted) / 1e9 }

    /// The rows of the appended ranges and of those not appended yet.
    private var totals: (rowsRead: Int64, rowsWritten: Int64, badRows: Int64) {
        let f = ranged.frontier
        var t = (f.rowsRead, f.rowsWritten, f.badRows)
        for r in ranged.ranges[ranged.appended...] {
            guard let run = r.run else { continue }
            t.0 += run.rowsRead
            t.1 += run.rowsWritten
            t.2 += run.badRows
        }
        return t
    }

    /// The input file the job is in: the frontier's, or at the end the last one read.
    private var currentFile: Int {
        let ranges = ranged.ranges
        if ranged.appended < ranges.count && !ranged.frontier.endedJob { return ranges[ranged.appended].file }
        let read = ranges[..<ranged.appended].last { $0.skipped != true }
        return read?.file ?? ranges[0].file
    }

    /// " of PATH (input K of N)" for a job of several files.
    private var whichInput: String {
        guard paths.count > 1 else { return "" }
        let file = currentFile
        return " of \(paths[file]) (input \(file + 1) of \(paths.count))"
    }

    private func prepared(_ status: Checkpoint.Status, reason: String?) -> Checkpoint {
        var cp = checkpoint
        var processed = ranged.frontier.inputBytes
        for r in ranged.ranges { processed += r.run?.inputBytes ?? 0 }
        cp.ranges!.processedInputBytes = processed
        let t = totals
        let f = ranged.frontier
        let file = currentFile
        cp.cursor = Cursor(offset: 0, line: f.line, inputOffset: 0, beforeHash: "", beforeLength: 0, rowsRead: t.rowsRead,
                           rowsWritten: t.rowsWritten, badRows: t.badRows, file: file)
        if let identities = cp.inputs, file < identities.count { cp.input = identities[file] }
        cp.transformStates = f.transformStates
        cp.status = status
        cp.reason = reason
        cp.elapsedSeconds = totalSeconds
        cp.pid = getpid()
        cp.updatedAt = isoTimestamp()
        var history = cp.history ?? []
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        history.append(ProgressSample(time: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9,
                                      inputOffset: cp.ranges!.processedInputBytes, rowsRead: t.rowsRead))
        if history.count > 16 { history.removeFirst(history.count - 16) }
        cp.history = history
        return cp
    }

    /// Saves the checkpoint: every file it names was synced before.
    private func save(_ status: Checkpoint.Status, reason: String? = nil) throws {
        let cp = prepared(status, reason: reason)
        try store.save(cp)
        checkpoint = cp
        lastSynced = cp
        for path in pendingUnlinks { unlink(path) }
        pendingUnlinks = []
    }

    private func snapshot() -> ProgressSnapshot {
        var rowsRead = ranged.frontier.rowsRead, rowsWritten = ranged.frontier.rowsWritten
        var position = ranged.frontier.inputBytes
        for (i, r) in ranged.ranges.enumerated() {
            if let worker = active[i] {
                position += worker.processed.load(ordering: .relaxed)
                rowsRead += worker.rowsRead.load(ordering: .relaxed)
                rowsWritten += worker.rowsWritten.load(ordering: .relaxed)
            } else if let run = r.run {
                position += run.inputBytes
                if i >= ranged.appended {
                    rowsRead += run.rowsRead
                    rowsWritten += run.rowsWritten
                }
            }
        }
        let total = (checkpoint.inputs ?? [checkpoint.input]).reduce(0) { $0 + $1.size }
        return ProgressSnapshot(rowsRead: rowsRead, rowsWritten: rowsWritten, bytesThisRun: position - processedAtStart,
                                position: position, total: total, startPosition: processedAtStart,
                                seconds: Double(monotonicNanoseconds() - runStarted) / 1e9)
    }

    private func event(_ name: String) -> EventLog.Event {
        let t = totals
        let total = (checkpoint.inputs ?? [checkpoint.input]).reduce(0) { $0 + $1.size }
        let position = ranged.ranges.reduce(ranged.frontier.inputBytes) { $0 + ($1.run?.inputBytes ?? 0) }
        return EventLog.Event(
            event: name, time: isoTimestamp(), runSeconds: Double(monotonicNanoseconds() - runStarted) / 1e9,
            offset: ranged.frontier.offset, line: ranged.frontier.line, rowsRead: t.rowsRead, rowsWritten: t.rowsWritten,
            badRows: t.badRows, percent: total > 0 ? (Double(min(position, total)) * 1000 / Double(total)).rounded() / 10 : nil)
    }

    private func reportBadRecord(_ bad: MalformedRecord, lineShift: Int64) {
        guard let events else { return }
        var e = event("bad-row")
        e.reason = bad.reason
        e.badLine = bad.line + lineShift
        e.badOffset = bad.offset
        events.write(e)
    }
}
