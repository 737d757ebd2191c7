/// Runs one job: reads records, passes them through the transforms, writes the output, and
/// checkpoints so that the job can be resumed with exactly-once output.
///
/// A run, top to bottom (``runJob()``):
/// 1. What the job is (``Job``) and what is there: the output, locked when it exists, and
///    the checkpoint; ``ResumeDecision/atStart(_:)`` says whether the job is complete, has an
///    end to confirm (``RecordedEnd``), or a checkpoint to examine.
/// 2. The input (``InputSequence``), and for a checkpoint ``ResumeDecision/beforeResuming(_:)``:
///    resume at its cursor, or refuse with nothing changed.
/// 3. The transforms learn the columns (from the header or the checkpoint) and take back their
///    saved states.
/// 4. Only now is anything modified: missing outputs are created, the outputs are cut back to
///    the checkpoint (or to nothing), and the input is moved to the cursor.
/// 5. The row loop (``RowLoop``) runs; every `checkpointInterval` seconds, and whenever the job
///    stops short of its end, ``CheckpointCommit`` commits output and checkpoint in order.
/// 6. At the end the transforms finish and the end is committed, without waiting for the disk
///    unless `syncAtEnd` (see ``Checkpoint/completion``).
public final class JobRunner {
    public let options: JobOptions
    let registry: TransformRegistry
    /// Where one-line notices go (standard error in the command-line tool).
    let sendNotice: (String) -> Void
    var progress: ProgressReporter?
    var events: EventLog?
    /// When this run started.
    let runStarted = monotonicNanoseconds()
    /// Where this run started in the input, for the rate and the ETA.
    var bytesBeforeThisRun: Int64 = 0
    var startPosition: Int64 = 0

    var inputs: InputSequence?
    var loop: RowLoop?
    var output: OutputFile?
    var quarantine: OutputFile?
    /// The transforms' output columns, for a job over ranges.
    var startedColumns: Columns?
    private var segment: OutputSegment?
    private var commit: CheckpointCommit?

    public init(options: JobOptions, registry: TransformRegistry = .builtIn,
                notice: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.registry = registry
        sendNotice = notice
    }

    func notice(_ text: String) {
        progress?.clear()
        sendNotice(text)
    }

    /// Runs the job to its end, to an interruption, or to an error (a ``PipeRunError``).
    public func run() throws -> JobOutcome {
        if let path = options.eventsPath {
            if path == "-" && options.outputPath == "-" {
                throw PipeRunError(.usage, "--events - and -o - cannot both use standard output")
            }
            events = try EventLog(path: path)
        }
        do {
            let outcome = try runJob()
            progress?.clear()
            return outcome
        } catch {
            progress?.clear()
            // What reached the output file is written before the process ends.
            if let segment { segment.drain() } else { try? output?.drain() }
            throw reported(failure: error)
        }
    }

    private func runJob() throws -> JobOutcome {
        let transforms = try options.transforms.map { try registry.make($0) }
        let job = try Job(options)
        let store = CheckpointStore(path: job.checkpointPath)
        output = try OutputFile.existing(path: options.outputPath, truncatable: job.outputIsFile)
        var saved: Checkpoint?
        switch try decideAtStart(job, store) {
        case .complete(let done):
            notice("job already complete: \(done.cursor.rowsRead) rows read, \(done.cursor.rowsWritten) written to \(done.output.path); use --restart to run it again")
            return .alreadyComplete
        case .resume(let checkpoint):
            saved = checkpoint
        }

        if let pattern = options.unmatchedPatterns.first { throw InputList.noMatch(pattern) }
        let inputs = try InputSequence(job, notice: notice)
        self.inputs = inputs
        let resumable = inputs.isResumable && job.outputIsFile
        if !resumable {
            let what = !job.outputIsFile ? "output that is not a regular file" : "input that is not a regular file"
            notice("note: \(what) cannot be resumed; this run writes no checkpoint")
            saved = nil
        } else if options.restart {
            try store.remove()
        }
        if options.handleSignals { StopSignals.install(graceSeconds: options.graceSeconds) }
        progress = ProgressReporter(mode: options.progress, logEvery: options.progressEvery)
        if resumable, let outcome = try runOverRanges(job, store, saved: saved, inputs: inputs, transforms: transforms) {
            return outcome
        }
        if let saved { try inputs.moveTo(saved, checkpointPath: store.path) }
        guard let reader = try inputs.openReader() else {
            notice("interrupted (\(StopSignals.name(receivedStopSignal.load(ordering: .relaxed)))) before any input was read")
            return .interrupted
        }
        defer { inputs.stop() }

        // Everything a resume depends on is checked before anything is modified.
        if let path = job.quarantinePath {
            quarantine = try OutputFile.existing(path: path, truncatable: fileKind(path).map { $0 == S_IFREG } ?? true)
        }
        var notices: [String] = []
        if let checkpoint = saved { (saved, notices) = try examine(checkpoint, job, store) }
        let loop = RowLoop(reader: reader, transforms: transforms, specs: options.transforms,
                           policy: options.onError, header: job.header)
        self.loop = loop
        guard let inputColumns = try columns(job, saved) else {
            notice("interrupted (\(StopSignals.name(receivedStopSignal.load(ordering: .relaxed)))) before the header was read")
            return .interrupted
        }
        let (format, delimiter) = try startTransforms(job, inputColumns)
        if let saved { try restoreStates(saved, store) }

        let created = try modify(job, saved, format: format, delimiter: delimiter)
        for text in notices { notice(text) }
        if let saved {
            notice("resuming at row \(loop.rowsRead), \(position(saved.cursor.offset, compressed: inputs.gzip?.compressedPosition ?? saved.cursor.offset))")
        }
        if resumable {
            try startCommitting(job, store, saved: saved, columns: job.header ? inputColumns?.names ?? [] : [])
        }
        events?.write(makeEvent(saved == nil ? "started" : "resumed"))

        let stopReason: String?
        do {
            stopReason = try drive(inputColumns)
        } catch let refused as RowLoop.ColumnsRefused {
            // Without a header, the transforms learn the columns at the first record: a chain
            // refused then leaves nothing of this run behind.
            if saved == nil {
                for path in created { unlink(path) }
                try store.remove()
            }
            throw refused.error
        }
        if let stopReason { return try interrupt(stopReason) }
        return try complete()
    }

    // MARK: Deciding

    private enum Start {
        case complete(Checkpoint)
        case resume(Checkpoint?)
    }

    /// Step 1: the checkpoint as recorded, and what it says before the input is opened.
    private func decideAtStart(_ job: Job, _ store: CheckpointStore) throws -> Start {
        let recorded = job.mayHaveCheckpoint ? try store.loadRecorded() : nil
        let facts = ResumeDecision.StartFacts(
            recorded: recorded, checkpointPath: store.path, bootID: currentBootID(), job: job.description,
            paths: job.paths, outputLength: job.outputIsFile ? try output?.length() : nil)
        switch ResumeDecision.atStart(facts) {
        case .fresh:
            return .resume(nil)
        case .alreadyComplete(let done):
            return .complete(done)
        case .confirmEnd(let recorded, let afterRestart):
            if let done = try RecordedEnd.confirm(recorded, afterRestart: afterRestart, output: output!, store: store) {
                return .complete(done)
            }
            return .resume(recorded)
        case .examine(let checkpoint):
            return .resume(checkpoint)
        case .refuse(let error):
            throw error
        }
    }

    /// Step 2: the input and the outputs as they are now, against `saved`.
    private func examine(_ saved: Checkpoint, _ job: Job, _ store: CheckpointStore) throws -> (Checkpoint, [String]) {
        let inputs = inputs!
        let facts = ResumeDecision.ResumeFacts(
            saved: saved, checkpointPath: store.path, transformCount: options.transforms.count,
            input: try inputs.observe(inputs.file, headLength: saved.input.headLength, before: saved.cursor,
                                      isGzip: inputs.gzip != nil),
            output: try observe(output, recorded: saved.output), quarantinePath: job.quarantinePath,
            quarantine: try saved.quarantine.flatMap { try observe(quarantine, recorded: $0) })
        switch ResumeDecision.beforeResuming(facts) {
        case .resume(let checkpoint, let notices):
            return (checkpoint, notices)
        case .refuse(let error):
            throw error
        }
    }

    /// An output as it is now, against the length and tail a checkpoint recorded. (From a
    /// checkpoint that may be damaged: at most 4 KiB is read, and ``ResumeDecision`` refuses
    /// such a file.)
    func observe(_ file: OutputFile?, recorded: OutputState) throws -> ObservedOutput? {
        guard let file else { return nil }
        let length = try file.length()
        guard length >= recorded.length, (0...4096).contains(recorded.tailLength),
              Int64(recorded.tailLength) <= recorded.length else { return ObservedOutput(length: length, tailHash: nil) }
        let tail = try preadAll(fd: file.fd, path: file.path, offset: recorded.length - Int64(recorded.tailLength),
                                count: recorded.tailLength)
        return ObservedOutput(length: length, tailHash: ContentHash.hex(tail))
    }

    // MARK: Columns and transforms

    /// Step 3: the input's columns, from the checkpoint or the header (nil when a signal
    /// interrupted the reading of the header); unknown until the first record without one.
    private func columns(_ job: Job, _ saved: Checkpoint?) throws -> Columns?? {
        if job.inputFormat == .lines, saved?.inputColumns.isEmpty ?? true { return .some(Columns(["1"])) }
        if let saved { return .some(saved.inputColumns.isEmpty ? nil : Columns(saved.inputColumns)) }
        guard job.header else { return .some(nil) }
        let reader = loop!.reader
        do {
            switch try reader.next() {
            case .record:
                let row = reader.row
                return .some(Columns((0..<row.count).map { row[$0].string }))
            case .malformed(let bad):
                throw PipeRunError(.dataError, "\(inputs!.file.path): line \(bad.line), byte \(bad.errorOffset): malformed header: \(bad.reason): \(bad.excerpt)")
            case .end:
                return .some(Columns([]))
            }
        } catch is ReadInterrupted {
            return nil
        }
    }

    /// Starts the transforms when the columns are known, and returns the output's format and
    /// delimiter (CSV when log lines become several columns).
    private func startTransforms(_ job: Job, _ columns: Columns?) throws -> (RecordFormat, UInt8) {
        var format = options.outputFormat ?? job.inputFormat
        var delimiter = options.outputDelimiter ?? (options.outputFormat == nil ? job.delimiter : format.defaultDelimiter)
        guard let columns else { return (format, delimiter) }
        try loop!.startTransforms(columns)
        if job.inputFormat == .lines && options.outputFormat == nil && loop!.outputColumns.count != 1 {
            format = .csv
            delimiter = options.outputDelimiter ?? RecordFormat.csv.defaultDelimiter
        }
        return (format, delimiter)
    }

    private func restoreStates(_ saved: Checkpoint, _ store: CheckpointStore) throws {
        for (t, state) in zip(loop!.transforms, saved.transformStates) {
            guard let state else { continue }
            do { try t.restoreState(state.bytes) } catch {
                throw PipeRunError(.dataError, "cannot restore a transform's state from checkpoint \(store.path): \(error); add --restart to start over")
            }
        }
    }

    // MARK: Modifying

    /// Step 4: creates the outputs that are not there yet, cuts them back to the checkpoint
    /// (or to nothing), moves the reader to the cursor and writes the header line of a new
    /// output. Returns the paths it created.
    private func modify(_ job: Job, _ saved: Checkpoint?, format: RecordFormat, delimiter: UInt8) throws -> [String] {
        let loop = loop!, inputs = inputs!
        var created: [String] = []
        if output == nil {
            output = try OutputFile.creating(path: options.outputPath, truncatable: job.outputIsFile)
            created.append(options.outputPath)
        }
        if let path = job.quarantinePath, quarantine == nil {
            quarantine = try OutputFile.creating(path: path, truncatable: fileKind(path).map { $0 == S_IFREG } ?? true)
            created.append(path)
        }
        let length = saved?.output.length ?? 0
        try output!.truncate(to: length)
        if let saved {
            loop.restoreCounts(saved.cursor)
            if let point = saved.gzip, let gzip = inputs.gzip {
                let skipped = try gzip.resume(from: point, to: saved.cursor.offset)
                if skipped >= 2 << 20 {
                    notice("no gzip access point near the cursor (a very long deflate block?): decompressed \(skipped >> 20) MiB again to reach it")
                }
                loop.reader.sourceMoved(to: saved.cursor.offset, line: saved.cursor.line)
            } else {
                try loop.reader.seek(to: saved.cursor.offset, line: saved.cursor.line)
            }
        }
        var quarantineLength: Int64 = 0
        if let saved, let q = saved.quarantine, q.path == job.quarantinePath { quarantineLength = q.length }
        let segment = try OutputSegment(file: output!, length: length, compress: job.compressOutput,
                                        level: options.compressionLevel, format: format, delimiter: delimiter,
                                        quarantine: quarantine, quarantineLength: quarantineLength)
        self.segment = segment
        segment.writer.copiesVerbatimRows = format == job.inputFormat && (job.inputFormat == .lines || delimiter == job.delimiter)
        loop.attach(segment)
        loop.onBadRecord = { [unowned self] bad in self.reportBadRecord(bad) }
        // The output has a header when the input has one, and when log lines become columns.
        if saved == nil, job.header || job.inputFormat == .lines, loop.columnsKnown, format != .lines,
           !loop.outputColumns.names.isEmpty {
            try loop.writeRow(strings: loop.outputColumns.names)
        }
        bytesBeforeThisRun = inputs.bytesOfEarlierFiles + loop.reader.cursor
        startPosition = progressPosition
        return created
    }

    /// The first commit of this run: a checkpoint that says the job is running from here.
    private func startCommitting(_ job: Job, _ store: CheckpointStore, saved: Checkpoint?, columns: [String]) throws {
        var checkpoint: Checkpoint
        if let saved {
            checkpoint = saved
            checkpoint.runs = saved.runs + 1
            checkpoint.completion = nil
        } else {
            checkpoint = try CheckpointCommit.fresh(job: job, inputs: inputs!, outputPath: output!.path, columns: columns,
                                                    transforms: loop!.transforms.count)
        }
        let commit = CheckpointCommit(store: store, checkpoint: checkpoint,
                                      endBootID: options.syncAtEnd ? nil : currentBootID(), inputs: inputs!,
                                      segment: segment!, loop: loop!, runStarted: runStarted)
        self.commit = commit
        if saved?.status == .failed { commit.adoptCurrentInput(try inputs!.currentIdentity()) }
        try commit.commit(.running)
    }

    // MARK: Running

    /// Step 5: runs the row loop to the end of the input (nil) or to a stop (its reason),
    /// committing on time and moving from one input file to the next.
    private func drive(_ columns: Columns?) throws -> String? {
        let loop = loop!, inputs = inputs!
        let start = monotonicNanoseconds()
        let interval = nanoseconds(options.checkpointInterval)
        var nextCheckpoint = options.checkpointInterval > 0 ? start.addingSaturating(interval) : UInt64.max
        let deadline = options.maxRuntime.map { start.addingSaturating(nanoseconds($0)) } ?? UInt64.max
        let ticker = Ticker(periodNanoseconds: min(10_000_000, max(1_000_000, interval / 2)))
        defer { ticker.stop() }
        while true {
            let stop: RowLoop.Stop
            do {
                stop = try loop.run(ticker: ticker)
            } catch let failure as RowLoop.Failure {
                try fail(at: failure.bad)
            }
            switch stop {
            case .stopSignal(let signal):
                return StopSignals.name(signal)
            case .tick:
                let now = monotonicNanoseconds()
                if now >= deadline { return "--max-runtime" }
                if now >= nextCheckpoint, let commit {
                    let ended = try commit.commit(.running)
                    events?.write(makeEvent("checkpoint"))
                    nextCheckpoint = monotonicNanoseconds().addingSaturating(interval)
                    if ended { return nil }
                }
                if let progress, progress.isDue(now) { progress.show(snapshot(), now: now) }
            case .endOfInput:
                if inputs.index + 1 < inputs.paths.count, let next = try inputs.advance(after: loop.reader, columns: columns) {
                    loop.reader = next
                    continue
                }
                return nil
            case .endOfJob, .endOfRange:
                return nil
            }
        }
    }

    /// Stops the job at a bad record under `--on-error fail`: the checkpoint points at it.
    private func fail(at bad: MalformedRecord) throws -> Never {
        let location = "\(inputs!.file.path): line \(bad.line), byte \(bad.errorOffset)"
        try segment!.seal()
        try commit?.commit(.failed, reason: "\(location): \(bad.reason)", at: (bad.offset, bad.line))
        let hint = commit != nil ? "; fix the input or rerun with --on-error skip to resume from this record" : ""
        throw PipeRunError(.dataError, "\(location): \(bad.reason): \(bad.excerpt)\(hint)")
    }

    private func interrupt(_ reason: String) throws -> JobOutcome {
        try segment!.seal()
        var event = makeEvent("interrupted")
        event.reason = reason
        if let commit {
            try commit.commit(.interrupted, reason: reason)
            notice("interrupted (\(reason)) at row \(loop!.rowsRead), \(position(loop!.reader.cursor, compressed: commit.cursor.inputOffset)); run the same command to resume")
        } else {
            notice("interrupted (\(reason)) at row \(loop!.rowsRead); this run cannot be resumed")
        }
        events?.write(event)
        return .interrupted
    }

    /// Step 6: the transforms finish, and the end is committed.
    private func complete() throws -> JobOutcome {
        try loop!.finish()
        try segment!.seal()
        if let commit {
            try commit.commit(.complete)
        } else if options.syncAtEnd {
            try segment!.sync()
        }
        notice(summary())
        var completed = makeEvent("completed")
        completed.outputLength = commit?.checkpoint.output.length
        events?.write(completed)
        return .completed
    }

    var totalSeconds: Double {
        commit?.totalSeconds ?? Double(monotonicNanoseconds() - runStarted) / 1e9
    }

    var runs: (count: Int, interruptions: Int)? {
        commit.map { ($0.checkpoint.runs, $0.checkpoint.interruptions) }
    }
}
