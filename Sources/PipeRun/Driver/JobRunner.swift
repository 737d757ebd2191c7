/// Runs one job: reads records, passes them through the transforms, writes the output, and
/// checkpoints so that the job can be resumed with exactly-once output.
///
/// The loop is: read a record → transforms → output buffer. Every `checkpointInterval`
/// seconds, and whenever the job stops short of its end, the output is flushed and synced and
/// then the checkpoint is replaced atomically, so it never describes output that is not on
/// disk. The end itself does not wait for the disk (unless `syncAtEnd`): it is recorded beside
/// the last synced checkpoint (see ``Checkpoint/completion``), and a later run confirms it or,
/// after a restart that lost part of it, writes that part again. Resuming truncates the output
/// back to the checkpoint's length, seeks the input to its cursor and restores the transforms'
/// states.
public final class JobRunner {
    public let options: JobOptions
    let registry: TransformRegistry
    /// Where one-line notices go (standard error in the command-line tool).
    let sendNotice: (String) -> Void
    private var progress: ProgressReporter?
    private var events: EventLog?
    /// When this run started, and the run time of earlier runs of the job.
    private let runStarted = monotonicNanoseconds()
    private var earlierSeconds = 0.0
    private var startPosition: Int64 = 0

    @exclusivity(unchecked) private var transforms: [any RowTransform] = []
    @exclusivity(unchecked) private var writer: RecordWriter!
    /// Stage `i` takes a row through transforms `i...` to the writer (see ``buildStages()``).
    private var stages: [(Row) throws -> Void] = []
    /// Stage 0, kept apart: a closure read from an array is called through a conversion thunk.
    private var firstStage: (Row) throws -> Void = { _ in }
    private var outputSink: (any OutputSink)!
    private var quarantineSink: PlainSink?
    private var quarantineWriter: RecordWriter?
    private var input: InputFile!
    /// The job's input paths, and which one is being read.
    private var paths: [String] = []
    private var inputIndex = 0
    /// Every input's identity when the job started.
    private var identities: [InputIdentity] = []
    /// Uncompressed bytes of the input files finished (over all runs), and of the part of the
    /// input read before this run started.
    private var bytesOfEarlierInputs: Int64 = 0
    private var bytesBeforeThisRun: Int64 = 0
    private var filesBefore: Int64 = 0
    private var gzip: GzipByteSource?
    private var readAhead: ReadAheadSource?
    private var output: OutputFile!
    private var quarantineFile: OutputFile?
    private var store: CheckpointStore?
    private var checkpoint: Checkpoint?
    /// The last checkpoint saved with its outputs synced.
    private var lastSynced: Checkpoint?
    /// This boot of the machine, when the end of the job will not wait for the disk (see
    /// ``Checkpoint/completion``); the outputs then keep a CRC-32 of what follows the last
    /// synced checkpoint.
    private var endBootID: String?
    private var job: JobDescription!
    @exclusivity(unchecked) private var rowsRead: Int64 = 0
    @exclusivity(unchecked) private var rowsWritten: Int64 = 0
    @exclusivity(unchecked) private var badRows: Int64 = 0
    /// Whether the transforms have been started (without a header, at the first record).
    @exclusivity(unchecked) private var columnsKnown = false
    /// Set when a transform ended the job while rows were being flushed for a checkpoint.
    private var endOfJobRequested = false

    public init(options: JobOptions, registry: TransformRegistry = .builtIn,
                notice: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.registry = registry
        sendNotice = notice
    }

    private func notice(_ text: String) {
        progress?.clear()
        sendNotice(text)
    }

    /// Seconds this job has run, over all its runs.
    private var totalSeconds: Double {
        earlierSeconds + Double(monotonicNanoseconds() - runStarted) / 1e9
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
            try? output?.drain()
            try? quarantineFile?.drain()
            // Every failure leaves as a PipeRunError, with a documented exit status.
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
            throw failure
        }
    }

    private var lastReader: RecordReader?

    private func makeEvent(_ name: String) -> EventLog.Event {
        EventLog.Event(
            event: name, time: isoTimestamp(), runSeconds: Double(monotonicNanoseconds() - runStarted) / 1e9,
            offset: lastReader?.cursor ?? 0, line: lastReader?.cursorLine ?? 1, rowsRead: rowsRead,
            rowsWritten: rowsWritten, badRows: badRows,
            percent: percentDone)
    }

    private var percentDone: Double? {
        let file: InputFile? = input
        guard let file, file.isSeekable, totalInputSize > 0 else { return nil }
        return (Double(progressPosition) * 1000 / Double(totalInputSize)).rounded() / 10
    }

    /// How far through the input files this run is (compressed bytes for gzip).
    private var progressPosition: Int64 {
        // (Read from another thread than the one decompressing.)
        if let gzip { return filesBefore + gzip.compressedBytesRead }
        return filesBefore + (lastReader?.cursor ?? 0)
    }

    /// The size of all input files.
    private var totalInputSize: Int64 {
        identities.isEmpty ? (input.map { $0.size } ?? 0) : identities.reduce(0) { $0 + $1.size }
    }

    private func runJob() throws -> JobOutcome {
        let inputFormat = options.inputFormat
        let delimiter = options.delimiter ?? inputFormat.defaultDelimiter
        let header = inputFormat == .lines ? false : options.header
        transforms = try options.transforms.map { try registry.make($0) }
        job = JobDescription(options)
        if inputFormat != .lines {
            guard delimiter != 34, delimiter != 10, delimiter != 13 else {
                throw PipeRunError(.usage, "the delimiter cannot be a quote, CR or LF")
            }
        }
        if let d = options.outputDelimiter, d == 34 || d == 10 || d == 13 {
            throw PipeRunError(.usage, "the output delimiter cannot be a quote, CR or LF")
        }

        paths = options.inputPaths
        guard !paths.isEmpty || !options.unmatchedPatterns.isEmpty else { throw PipeRunError(.usage, "no input") }
        if paths.count > 1 && paths.contains("-") {
            throw PipeRunError(.usage, "standard input (-) cannot be one of several inputs")
        }
        if Set(paths).count != paths.count {
            throw PipeRunError(.usage, "an input is named twice: \(paths.first { p in paths.filter { $0 == p }.count > 1 }!)")
        }
        let checkpointPath = options.checkpointPath ?? CheckpointStore.defaultPath(forOutput: options.outputPath)
        var quarantinePath: String? = nil
        if case .quarantine(let path) = options.onError { quarantinePath = path }
        try refuseSharedFiles(checkpoint: checkpointPath, quarantine: quarantinePath)
        let outputIsFile = options.outputPath != "-" && fileKind(options.outputPath).map { $0 == S_IFREG } ?? true
        if let done = try alreadyComplete(checkpointPath: checkpointPath, outputIsFile: outputIsFile) {
            try reportComplete(done)
            return .alreadyComplete
        }
        if let pattern = options.unmatchedPatterns.first { throw InputList.noMatch(pattern) }
        input = try InputFile(path: paths[0])
        for path in paths.dropFirst() where fileKind(path) == nil {
            throw PipeRunError(.noInput, "cannot open input \(path): \(describe(errno: ENOENT))")
        }

        let resumable = input.isSeekable && outputIsFile && paths.allSatisfy { fileKind($0) == S_IFREG }
        if !resumable {
            let what = !outputIsFile ? "output that is not a regular file" : "input that is not a regular file"
            notice("note: \(what) cannot be resumed; this run writes no checkpoint")
        }
        if resumable {
            store = CheckpointStore(path: checkpointPath)
        } else {
            store = nil
        }

        // An output that is not there yet is created only once the run is sure to go ahead, so
        // that a refused run creates nothing; one that is there is locked before the checkpoint
        // is read, so that a second run of the job is refused before it changes anything.
        if output == nil { output = try OutputFile.existing(path: options.outputPath, truncatable: outputIsFile) }
        if options.handleSignals { StopSignals.install(graceSeconds: options.graceSeconds) }
        progress = ProgressReporter(mode: options.progress, logEvery: options.progressEvery)

        var saved: Checkpoint? = nil
        if let store {
            if options.restart {
                try store.remove()
            } else {
                // (An end recorded without waiting for the disk was confirmed or found lost in
                // alreadyComplete; the same boot's, recorded since, is complete here.)
                saved = try store.load()
            }
        }
        if let saved, saved.status == .complete {
            try reportComplete(saved)
            return .alreadyComplete
        }

        if let saved {
            if options.inputPatterns != nil, saved.job.inputPatterns == options.inputPatterns, let list = saved.inputs {
                // The file list was fixed when the job started; files that match now but did
                // not then are not part of it.
                paths = list.map(\.path)
            }
            let file = saved.cursor.file ?? 0
            if file > 0 || paths[0] != input.path {
                guard file < paths.count else {
                    throw PipeRunError(.dataError, "checkpoint \(store!.path) is damaged (cursor.file is out of range); add --restart to start over")
                }
                inputIndex = file
                input = try InputFile(path: paths[file])
            }
        }
        guard var reader = try openReader() else {
            notice("interrupted (\(StopSignals.name(receivedStopSignal.load(ordering: .relaxed)))) before any input was read")
            return .interrupted
        }
        defer { readAhead?.stop() }

        // Everything a resume depends on is checked before anything is modified.
        var inputColumns: Columns? = inputFormat == .lines ? Columns(["1"]) : nil
        var quarantineLength: Int64 = 0
        if let saved {
            try verifySameJob(saved)
            try saved.validate(path: store!.path, transforms: transforms.count)
            try verifyInput(saved)
            try verifyOutput(saved.output, file: output, path: options.outputPath, what: "output")
            if !saved.inputColumns.isEmpty { inputColumns = Columns(saved.inputColumns) }
        } else if header {
            do {
                switch try reader.next() {
                case .record:
                    let row = reader.row
                    inputColumns = Columns((0..<row.count).map { row[$0].string })
                case .malformed(let bad):
                    throw PipeRunError(.dataError, "\(input.path): line \(bad.line), byte \(bad.errorOffset): malformed header: \(bad.reason): \(bad.excerpt)")
                case .end:
                    inputColumns = Columns([])
                }
            } catch is ReadInterrupted {
                notice("interrupted (\(StopSignals.name(receivedStopSignal.load(ordering: .relaxed)))) before the header was read")
                return .interrupted
            }
        }
        let compressOutput = options.compressOutput ?? options.outputPath.hasSuffix(".gz")
        var outputFormat = options.outputFormat ?? inputFormat
        var outputDelimiter = options.outputDelimiter ?? (options.outputFormat == nil ? delimiter : outputFormat.defaultDelimiter)
        var outputColumns = Columns([])
        func startTransforms(_ columns: Columns) throws {
            var current = columns
            for t in transforms { current = try t.start(input: current) }
            outputColumns = current
            if header || !columns.names.isEmpty { reader.expectedFields = columns.count }
            columnsKnown = true
        }
        if let inputColumns {
            try startTransforms(inputColumns)
            if inputFormat == .lines && options.outputFormat == nil && outputColumns.count != 1 {
                outputFormat = .csv
                outputDelimiter = options.outputDelimiter ?? RecordFormat.csv.defaultDelimiter
            }
        }
        if let saved {
            for (t, state) in zip(transforms, saved.transformStates) {
                guard let state else { continue }
                do { try t.restoreState(state.bytes) } catch {
                    throw PipeRunError(.dataError, "cannot restore a transform's state from checkpoint \(store!.path): \(error); add --restart to start over")
                }
            }
        }
        var quarantine: OutputFile? = nil
        let quarantineTruncatable = quarantinePath.map { fileKind($0).map { $0 == S_IFREG } ?? true } ?? true
        if let quarantinePath {
            quarantine = try OutputFile.existing(path: quarantinePath, truncatable: quarantineTruncatable)
            if let saved, let q = saved.quarantine, q.path == quarantinePath {
                try verifyOutput(q, file: quarantine, path: quarantinePath, what: "quarantine file")
                quarantineLength = q.length
            }
        }

        // Now modify: create the outputs that are not there yet, cut them back to the
        // checkpoint (or to nothing) and seek the input.
        var created: [String] = []
        if output == nil {
            output = try OutputFile.creating(path: options.outputPath, truncatable: outputIsFile)
            created.append(options.outputPath)
        }
        if let quarantinePath, quarantine == nil {
            quarantine = try OutputFile.creating(path: quarantinePath, truncatable: quarantineTruncatable)
            created.append(quarantinePath)
        }
        var startLength: Int64 = 0
        if let saved {
            startLength = saved.output.length
            try output.truncate(to: startLength)
            rowsRead = saved.cursor.rowsRead
            rowsWritten = saved.cursor.rowsWritten
            badRows = saved.cursor.badRows
            if let point = saved.gzip {
                guard let gzip else {
                    throw PipeRunError(.dataError, "input \(input.path) is no longer gzip; add --restart to start over")
                }
                let skipped = try gzip.resume(from: point, to: saved.cursor.offset)
                if skipped >= 2 << 20 {
                    notice("no gzip access point near the cursor (a very long deflate block?): decompressed \(skipped >> 20) MiB again to reach it")
                }
                reader.sourceMoved(to: saved.cursor.offset, line: saved.cursor.line)
            } else {
                if gzip != nil, saved.cursor.offset > 0 {
                    throw PipeRunError(.dataError, "input \(input.path) is gzip now but was not; add --restart to start over")
                }
                try reader.seek(to: saved.cursor.offset, line: saved.cursor.line)
            }
        } else {
            try output.truncate(to: 0)
        }
        if compressOutput {
            outputSink = try GzipSink(file: output, startingAt: startLength, level: options.compressionLevel)
        } else {
            outputSink = PlainSink(file: output, startingAt: startLength)
        }
        if store != nil, !options.syncAtEnd, let boot = currentBootID() {
            endBootID = boot
            output.keepChecksum()
            quarantine?.keepChecksum()
        }
        writer = RecordWriter(sink: outputSink, format: outputFormat, delimiter: outputDelimiter)
        writer.copiesVerbatimRows = outputFormat == inputFormat && (inputFormat == .lines || outputDelimiter == delimiter)
        buildStages()
        if let quarantine {
            try quarantine.truncate(to: quarantineLength)
            quarantineFile = quarantine
            quarantineSink = PlainSink(file: quarantine, startingAt: quarantineLength)
            quarantineWriter = RecordWriter(sink: quarantineSink!, format: .csv, delimiter: 44)
            if quarantineLength == 0 {
                try quarantineWriter!.writeRaw(UnsafeRawBufferPointer(bytes: "line,offset,reason,record\n"))
            }
        }
        // The output has a header when the input has one, and when log lines become columns.
        if saved == nil, header || inputFormat == .lines, columnsKnown, outputFormat != .lines, !outputColumns.names.isEmpty {
            try writeRow(strings: outputColumns.names)
        }

        checkpoint = saved
        bytesOfEarlierInputs = saved?.cursor.bytesBefore ?? 0
        bytesBeforeThisRun = bytesOfEarlierInputs + reader.cursor
        startPosition = progressPosition
        if let saved {
            earlierSeconds = saved.elapsedSeconds ?? 0
            checkpoint!.runs = saved.runs + 1
            if saved.completion != nil {
                notice("the machine restarted after this job ended, before its output was known to be on the disk: writing again what followed the last checkpoint")
                checkpoint!.completion = nil
            }
            identities = saved.inputs ?? [saved.input]
            if saved.status == .failed {
                checkpoint!.input = try currentIdentity()
                if inputIndex < identities.count { identities[inputIndex] = checkpoint!.input }
                checkpoint!.inputs = identities
            }
            filesBefore = identities.prefix(inputIndex).reduce(0) { $0 + $1.size }
            notice("resuming at row \(rowsRead), \(position(saved.cursor.offset, compressed: gzip?.compressedPosition ?? saved.cursor.offset))")
        }
        if store != nil, saved == nil {
            checkpoint = try freshCheckpoint(columns: header ? inputColumns?.names ?? [] : [])
        }
        if store != nil {
            try writeCheckpoint(status: .running, reader: reader)
        }
        events?.write(makeEvent(saved == nil ? "started" : "resumed"))

        // The loop.
        let start = monotonicNanoseconds()
        let interval = nanoseconds(options.checkpointInterval)
        var nextCheckpoint = options.checkpointInterval > 0 ? start.addingSaturating(interval) : UInt64.max
        let deadline = options.maxRuntime.map { start.addingSaturating(nanoseconds($0)) } ?? UInt64.max
        let ticker = Ticker(periodNanoseconds: min(10_000_000, max(1_000_000, interval / 2)))
        defer { ticker.stop() }
        var stopReason: String? = nil

        let firstStage = self.firstStage
        loop: while true {
            if receivedStopSignal.load(ordering: .relaxed) != 0 {
                stopReason = StopSignals.name(receivedStopSignal.load(ordering: .relaxed))
                break
            }
            if ticker.fired {
                let now = monotonicNanoseconds()
                if now >= deadline {
                    stopReason = "--max-runtime"
                    break
                }
                if now >= nextCheckpoint {
                    try writeCheckpoint(status: .running, reader: reader)
                    events?.write(makeEvent("checkpoint"))
                    nextCheckpoint = monotonicNanoseconds().addingSaturating(interval)
                    if endOfJobRequested { break loop }
                }
                if let progress, progress.isDue(now) {
                    progress.show(snapshot(reader), now: now)
                }
            }
            let next: RecordReader.Next
            do {
                next = try reader.next()
            } catch is ReadInterrupted {
                continue
            }
            switch next {
            case .end:
                if inputIndex + 1 < paths.count,
                   let following = try advanceInput(after: reader, columns: inputColumns, header: header) {
                    reader = following
                    continue
                }
                break loop
            case .record:
                if !columnsKnown {
                    do {
                        try startTransforms(Columns.numbered(reader.row.count))
                    } catch let error as PipeRunError where saved == nil {
                        // Without a header, the transforms learn the columns at the first record:
                        // a chain refused then leaves nothing of this run behind.
                        for path in created { unlink(path) }
                        try store?.remove()
                        throw error
                    }
                    checkpoint?.inputColumns = Columns.numbered(reader.row.count).names
                }
                rowsRead += 1
                writer.beginRecord()
                let row = reader.row
                do {
                    try firstStage(row)
                } catch let failure as OutputFailure {
                    throw failure.underlying
                } catch is EndOfJob {
                    break loop
                } catch let fatal as FatalTransformError {
                    throw PipeRunError(.dataError, fatal.message)
                } catch {
                    writer.discardRecord()
                    let message = (error as? PipeRunError)?.message ?? "\(error)"
                    let bad = MalformedRecord(reason: "transform failed: \(message)", offset: row.offset,
                                              errorOffset: row.offset, line: row.line, raw: Array(reader.rawRecord))
                    try handleBadRecord(bad, reader: reader, countedAsRead: true)
                }
            case .malformed(let bad):
                try handleBadRecord(bad, reader: reader, countedAsRead: false)
            }
        }

        if let stopReason {
            try writer.flush()
            _ = try outputSink.seal()
            try sealQuarantine()
            var event = makeEvent("interrupted")
            event.reason = stopReason
            if store != nil {
                try writeCheckpoint(status: .interrupted, reader: reader, reason: stopReason)
                notice("interrupted (\(stopReason)) at row \(rowsRead), \(position(reader.cursor, compressed: checkpoint?.cursor.inputOffset ?? reader.cursor)); run the same command to resume")
            } else {
                notice("interrupted (\(stopReason)) at row \(rowsRead); this run cannot be resumed")
            }
            events?.write(event)
            return .interrupted
        }

        if !columnsKnown { try startTransforms(Columns([])) }
        for stage in transforms.indices {
            do {
                try transforms[stage].finish { try push($0, stage: stage + 1) }
            } catch is EndOfJob {
                continue
            } catch let failure as OutputFailure {
                throw failure.underlying
            } catch let error as PipeRunError {
                throw error
            } catch let fatal as FatalTransformError {
                throw PipeRunError(.dataError, fatal.message)
            } catch {
                throw PipeRunError(.dataError, "transform '\(options.transforms[stage])' failed at the end of the input: \(error)")
            }
        }
        try writer.flush()
        _ = try outputSink.seal()
        try sealQuarantine()
        if store != nil {
            try writeCheckpoint(status: .complete, reader: reader)
        } else if options.syncAtEnd {
            try output.sync()
            try quarantineFile?.sync()
        }
        var summary = "done: \(rowsRead) rows read, \(rowsWritten) written"
        if badRows > 0 { summary += ", \(badRows) bad rows " + (quarantineWriter != nil ? "quarantined" : "skipped") }
        let seconds = totalSeconds
        let megabytes = Double(bytesOfEarlierInputs + reader.cursor) / 1e6
        summary += "; \(String(format1: megabytes)) MB in \(duration(seconds))"
        if let cp = checkpoint, cp.runs > 1 {
            summary += " over \(cp.runs) runs (\(cp.interruptions) interruption\(cp.interruptions == 1 ? "" : "s"))"
        }
        if seconds > 0 { summary += ", \(String(format1: megabytes / seconds)) MB/s" }
        notice(summary)
        var completed = makeEvent("completed")
        completed.outputLength = checkpoint?.output.length
        events?.write(completed)
        return .completed
    }

    /// Passes `row` to the transform at `stage`, or writes it after the last one.
    private func push(_ row: Row, stage: Int) throws {
        try stages[stage](row)
    }

    /// Makes ``stages``: for each stage, a closure that hands a row to that stage's transform
    /// with the next stage's closure as `emit`, the last one writing. (Closures that hold their
    /// transform and their successor: the per-row path does no lookups and no reference
    /// counting.)
    private func buildStages() {
        let writer = self.writer!
        var next: (Row) throws -> Void = { [unowned(unsafe) self] row in
            do {
                try writer.write(row)
            } catch {
                throw OutputFailure(underlying: error)
            }
            self.rowsWritten += 1
        }
        var built = [next]
        for transform in transforms.reversed() {
            let following = next
            next = { row in try transform.process(row, emit: following) }
            built.append(next)
        }
        stages = built.reversed()
        firstStage = next
    }

    /// Opens a reader on ``input``: gzip (decompressed on a read-ahead thread) or plain. Returns
    /// nil when a signal interrupted the first read of a pipe.
    private func openReader() throws -> RecordReader? {
        let shouldStop = { receivedStopSignal.load(ordering: .relaxed) != 0 }
        let magic: [UInt8]
        do {
            magic = try input.sniff()
        } catch is ReadInterrupted {
            return nil
        }
        readAhead?.stop()
        readAhead = nil
        gzip = nil
        let source: any ByteSource
        let delimiter = options.delimiter ?? options.inputFormat.defaultDelimiter
        // CSV and TSV readers get their blocks' special bytes listed on the read-ahead thread.
        let indexing = options.inputFormat == .lines ? nil : delimiter
        if GzipByteSource.isGzip(magic) {
            // (A regular file's read that a signal interrupts is retried, as below; a pipe's read
            // stops the job.)
            let gzip = try GzipByteSource(input, prefix: input.isSeekable ? [] : magic,
                                          pointSpacing: options.gzipAccessPointSpacing,
                                          shouldStop: input.isSeekable ? { false } : shouldStop)
            self.gzip = gzip
            // Decompress on a second thread, which starts at the first read (after a resume).
            let ahead = ReadAheadSource(wrapping: gzip, indexing: indexing, shouldStop: shouldStop)
            readAhead = ahead
            source = ahead
        } else if input.isSeekable {
            // A regular file never blocks a read for long: read ahead, so the main thread parses.
            // (A read that a signal interrupts is retried: the reader notices the signal itself,
            // and an interrupted read-ahead would stay failed.)
            let ahead = ReadAheadSource(wrapping: FileByteSource(input, shouldStop: { false }), indexing: indexing,
                                        shouldStop: shouldStop)
            readAhead = ahead
            source = ahead
        } else {
            source = FileByteSource(input, prefix: magic, shouldStop: shouldStop)
        }
        let reader = RecordReader(source: source, format: options.inputFormat,
                                  delimiter: delimiter,
                                  // Room for a whole read-ahead block after a partial record.
                                  bufferSize: min(2 << 20, options.maxRecordBytes),
                                  maxRecordBytes: options.maxRecordBytes, maxFields: options.maxFields)
        reader.flexible = options.flexible
        lastReader = reader
        return reader
    }

    /// Moves on to the next input file that is as it was when the job started (or leaves out
    /// the ones that changed, with --skip-changed-inputs), checks its header, and returns its
    /// reader; nil when there is none left.
    private func advanceInput(after reader: RecordReader, columns: Columns?, header: Bool) throws -> RecordReader? {
        let lastRead = (index: inputIndex, filesBefore: filesBefore, bytes: bytesOfEarlierInputs)
        bytesOfEarlierInputs += reader.cursor
        filesBefore += input.size
        readAhead?.stop()
        defer {
            // Every remaining input was left out: the cursor stays at the end of the last one read.
            if input.path != paths[inputIndex] {
                (inputIndex, filesBefore, bytesOfEarlierInputs) = lastRead
            }
        }
        while inputIndex + 1 < paths.count {
            inputIndex += 1
            let path = paths[inputIndex]
            var problem: String? = nil
            var file: InputFile? = nil
            do {
                file = try InputFile(path: path)
            } catch let error as PipeRunError {
                problem = error.message
            }
            if let file, inputIndex < identities.count {
                let was = identities[inputIndex]
                let st = file.status
                var changes: [String] = []
                if UInt64(st.st_dev) != was.device || UInt64(st.st_ino) != was.inode { changes.append("it was replaced by another file") }
                if Int64(st.st_size) != was.size { changes.append("its size was \(was.size) bytes, now \(st.st_size)") }
                if modifiedNanoseconds(st) != was.modifiedNanoseconds { changes.append("it was modified") }
                if changes.isEmpty, ContentHash.hex(try file.read(at: 0, count: was.headLength)) != was.headHash {
                    changes.append("its first \(was.headLength) bytes differ")
                }
                if !changes.isEmpty { problem = "input \(path) changed since the job started: " + changes.joined(separator: "; ") }
            }
            if let problem {
                if options.skipChangedInputs {
                    notice("skipping: \(problem)")
                    continue
                }
                throw PipeRunError(.dataError, "\(problem); rerun with --skip-changed-inputs to leave it out, or --restart")
            }
            input = file
            checkpoint?.input = identities[inputIndex]
            guard let next = try openReader() else { return nil }
            next.expectedFields = reader.expectedFields
            if header {
                // The header is read whole even if a stop signal comes now: the job then stops
                // at the next row boundary, with a cursor after this file's header.
                var first: RecordReader.Next
                while true {
                    do {
                        first = try next.next()
                        break
                    } catch is ReadInterrupted {
                        continue
                    }
                }
                switch first {
                case .record:
                    let row = next.row
                    let names = (0..<row.count).map { row[$0].string }
                    if let columns, names != columns.names {
                        throw PipeRunError(.dataError, "\(path): line 1: its header (\(names.joined(separator: ","))) differs from the first input's (\(columns.names.joined(separator: ",")))")
                    }
                case .malformed(let bad):
                    throw PipeRunError(.dataError, "\(path): line \(bad.line), byte \(bad.errorOffset): malformed header: \(bad.reason): \(bad.excerpt)")
                case .end:
                    break
                }
            }
            return next
        }
        return nil
    }

    private func snapshot(_ reader: RecordReader) -> ProgressSnapshot {
        ProgressSnapshot(rowsRead: rowsRead, rowsWritten: rowsWritten,
                         bytesThisRun: bytesOfEarlierInputs + reader.cursor - bytesBeforeThisRun,
                         position: progressPosition, total: input.isSeekable ? totalInputSize : 0,
                         startPosition: startPosition, seconds: Double(monotonicNanoseconds() - runStarted) / 1e9)
    }

    private func writeRow(strings: [String]) throws {
        let builder = RowBuilder()
        for s in strings { builder.append(s) }
        try builder.withRow { try writer.write($0) }
    }

    private func handleBadRecord(_ bad: MalformedRecord, reader: RecordReader, countedAsRead: Bool) throws {
        let location = "\(input.path): line \(bad.line), byte \(bad.errorOffset)"
        if let events {
            var event = makeEvent("bad-row")
            event.reason = bad.reason
            event.badLine = bad.line
            event.badOffset = bad.offset
            events.write(event)
        }
        switch options.onError {
        case .fail:
            if countedAsRead { rowsRead -= 1 }
            try writer.flush()
            _ = try outputSink.seal()
            try quarantineWriter?.flush()
            if store != nil {
                try writeCheckpoint(status: .failed, reader: reader, reason: "\(location): \(bad.reason)",
                                    at: (bad.offset, bad.line))
            }
            let hint = store != nil ? "; fix the input or rerun with --on-error skip to resume from this record" : ""
            throw PipeRunError(.dataError, "\(location): \(bad.reason): \(bad.excerpt)\(hint)")
        case .skip:
            badRows += 1
        case .quarantine:
            badRows += 1
            let builder = RowBuilder()
            builder.append(String(bad.line))
            builder.append(String(bad.offset))
            builder.append(bad.reason)
            // The record without its line end.
            var end = bad.raw.count
            if end > 0 && bad.raw[end - 1] == 10 { end -= 1 }
            if end > 0 && bad.raw[end - 1] == 13 { end -= 1 }
            bad.raw.withUnsafeBytes { builder.appendCopy(UnsafeRawBufferPointer(rebasing: $0[..<end])) }
            try builder.withRow { try quarantineWriter!.write($0) }
        }
    }

    // MARK: Checkpoints

    private func currentIdentity() throws -> InputIdentity {
        try identityOf(input)
    }

    private func identityOf(_ input: InputFile) throws -> InputIdentity {
        let head = try input.read(at: 0, count: 64 << 10)
        let st = input.status
        return InputIdentity(
            path: input.path, size: Int64(st.st_size), modifiedNanoseconds: modifiedNanoseconds(st),
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), headHash: ContentHash.hex(head), headLength: head.count)
    }

    private func freshCheckpoint(columns: [String]) throws -> Checkpoint {
        let identity = try currentIdentity()
        identities = [identity]
        for path in paths.dropFirst() {
            identities.append(try identityOf(InputFile(path: path)))
        }
        let now = isoTimestamp()
        return Checkpoint(
            status: .running, reason: nil, pid: getpid(), job: job, jobFingerprint: job.fingerprint, input: identity,
            inputs: identities, inputColumns: columns,
            cursor: Cursor(offset: 0, line: 1, inputOffset: 0, beforeHash: ContentHash.hex([]), beforeLength: 0, rowsRead: 0,
                           rowsWritten: 0, badRows: 0, file: 0),
            gzip: nil,
            output: OutputState(path: output.path, length: 0, tailHash: ContentHash.hex([]), tailLength: 0),
            quarantine: nil, transformStates: transforms.map { _ in nil }, createdAt: now, updatedAt: now,
            runs: 1, interruptions: 0)
    }

    /// Flushes and syncs the outputs, then atomically replaces the checkpoint.
    private func writeCheckpoint(status: Checkpoint.Status, reader: RecordReader, reason: String? = nil,
                                 at position: (offset: Int64, line: Int64)? = nil) throws {
        guard let store, var cp = checkpoint else { return }
        for stage in transforms.indices {
            do {
                try transforms[stage].willCheckpoint { try push($0, stage: stage + 1) }
            } catch is EndOfJob {
                // A later transform (head:N) has all it wants: the job ends after this checkpoint.
                endOfJobRequested = true
            }
        }
        try writer.flush()
        let outputLength = try outputSink.seal()
        // The end of the job does not wait for the disk (see Checkpoint.completion), unless
        // --sync asks it to or the platform cannot tell a restart.
        let bootID = status == .complete ? endBootID : nil
        let unsynced = bootID != nil && lastSynced != nil
        if !unsynced { try output.sync() }
        if let quarantineWriter, let quarantineFile {
            try quarantineWriter.flush()
            let quarantineLength = try quarantineSink!.seal()
            if !unsynced { try quarantineFile.sync() }
            cp.quarantine = try outputState(quarantineFile, length: quarantineLength)
        }
        let offset = position?.offset ?? reader.cursor
        var inputOffset = offset
        cp.gzip = nil
        if let gzip {
            guard let point = gzip.accessPoint(atOrBefore: offset) else { return }
            cp.gzip = point
            inputOffset = point.resumeOffset
        }
        // Up to 64 KiB before the cursor: after a failure, this is what proves that a fixed
        // input still agrees with the output written so far.
        let before = try input.read(at: max(0, inputOffset - 65536), count: Int(min(inputOffset, 65536)))
        cp.cursor = Cursor(offset: offset, line: position?.line ?? reader.cursorLine, inputOffset: inputOffset,
                           beforeHash: ContentHash.hex(before), beforeLength: before.count,
                           rowsRead: rowsRead, rowsWritten: rowsWritten, badRows: badRows, file: inputIndex,
                           bytesBefore: bytesOfEarlierInputs)
        cp.output = try outputState(output, length: outputLength)
        cp.transformStates = try transforms.map { t in try t.saveState().map(ExactBytes.init) }
        cp.status = status
        cp.reason = reason
        cp.elapsedSeconds = totalSeconds
        var history = cp.history ?? []
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        history.append(ProgressSample(time: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9, inputOffset: filesBefore + inputOffset,
                                      rowsRead: rowsRead))
        if history.count > 16 { history.removeFirst(history.count - 16) }
        cp.history = history
        cp.pid = getpid()
        cp.updatedAt = isoTimestamp()
        if status == .interrupted { cp.interruptions += 1 }
        if unsynced, let bootID, let lastSynced {
            // A disk error the flusher saw would be reported to no one else.
            try output.stopFlushing()
            try quarantineFile?.stopFlushing()
            let recorded = lastSynced.recording(completion: cp, bootID: bootID, outputCRC32: try output.checksum(),
                                                quarantineCRC32: try quarantineFile?.checksum())
            try store.save(recorded, durably: false)
        } else {
            // What follows this checkpoint is checksummed from here.
            _ = try output.checksum()
            _ = try quarantineFile?.checksum()
            try store.save(cp)
            lastSynced = cp
        }
        checkpoint = cp
    }

    private func outputState(_ file: OutputFile, length: Int64) throws -> OutputState {
        let tail = try preadAll(fd: file.fd, path: file.path, offset: max(0, length - 4096), count: Int(min(length, 4096)))
        return OutputState(path: file.path, length: length, tailHash: ContentHash.hex(tail), tailLength: tail.count)
    }

    /// "byte B of S (P%)", or for gzip "byte B (compressed byte C of S, P%)"; with several
    /// inputs, which one.
    private func position(_ offset: Int64, compressed: Int64) -> String {
        var text: String
        if gzip != nil {
            text = "byte \(offset) (compressed byte \(compressed) of \(input.size), \(percent(compressed))%)"
        } else {
            text = "byte \(offset) of \(input.size) (\(percent(offset))%)"
        }
        if paths.count > 1 {
            text += " of \(input.path) (input \(inputIndex + 1) of \(paths.count))"
        }
        return text
    }

    private func percent(_ offset: Int64) -> String {
        let size = input.size
        guard size > 0 else { return "100.0" }
        let tenths = Double(offset) * 1000 / Double(size)
        return String(Double(Int(tenths)) / 10)
    }

    // MARK: Verifying a checkpoint before resuming

    /// The checkpoint of a complete job, read before the input is opened: a job is reported
    /// complete even when its input is gone since (a rotated log). One whose end was recorded
    /// without waiting for the disk is confirmed first, with the output opened and locked (and
    /// left open for the resume when the end was lost). Nothing else is opened or created.
    private func alreadyComplete(checkpointPath: String, outputIsFile: Bool) throws -> Checkpoint? {
        // Only for what a checkpoint can have been written for: an output that is there and
        // inputs that are regular files (or gone since); never a pipe, which is read afresh.
        guard !options.restart, outputIsFile, fileKind(options.outputPath) != nil,
              paths.allSatisfy({ $0 != "-" && fileKind($0).map { $0 == S_IFREG } ?? true }) else { return nil }
        let store = CheckpointStore(path: checkpointPath)
        guard let recorded = try store.loadRecorded() else { return nil }
        self.store = store
        if recorded.status == .complete { return recorded }
        guard recorded.completion != nil else { return nil }
        output = try OutputFile(path: options.outputPath)
        return try confirmCompletion(recorded, store: store)
    }

    /// For a checkpoint whose end was recorded without waiting for the disk: in the same boot,
    /// syncs the outputs; after a restart, first checks that the bytes after the synced state
    /// are the ones written then (by their CRC-32). Then saves the complete checkpoint, synced
    /// like any other, and returns it. Nil when there is no such end, or it was lost.
    private func confirmCompletion(_ recorded: Checkpoint, store: CheckpointStore) throws -> Checkpoint? {
        guard let end = recorded.completion else { return nil }
        let done = end.checkpoint
        try verifySameJob(recorded)
        // A quarantine file that is not a regular file (a device) keeps nothing to check.
        var quarantineFD: Int32 = -1
        if let q = done.quarantine, fileKind(q.path) == S_IFREG {
            quarantineFD = open(q.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard quarantineFD >= 0 else {
                throw PipeRunError(.ioError, "cannot open quarantine file \(q.path): \(describe(errno: errno))")
            }
        }
        defer { if quarantineFD >= 0 { close(quarantineFD) } }
        if end.bootID != currentBootID() {
            guard try written(fd: output.fd, path: output.path, from: recorded.output.length, to: done.output.length,
                              crc: end.outputCRC32) else { return nil }
            if let q = done.quarantine, quarantineFD >= 0 {
                guard let crc = end.quarantineCRC32,
                      try written(fd: quarantineFD, path: q.path, from: recorded.quarantine?.length ?? 0, to: q.length, crc: crc)
                else { return nil }
            }
        }
        do {
            try output.sync()
            if quarantineFD >= 0, let err = syncData(quarantineFD) {
                throw PipeRunError(.ioError, "cannot sync quarantine file \(done.quarantine!.path): \(describe(errno: err))")
            }
        } catch {
            // The disk lost part of the end: a later sync would not say so again, so the job
            // forgets its end and resumes from the synced state next time.
            var synced = recorded
            synced.completion = nil
            try? store.save(synced)
            throw error
        }
        try store.save(done)
        return done
    }

    /// Whether the file at `fd` is `end` bytes long and its bytes from `start` have CRC-32 `crc`.
    private func written(fd: Int32, path: String, from start: Int64, to end: Int64, crc: UInt32) throws -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, Int64(st.st_size) == end, start <= end else { return false }
        var sum: UInt32 = 0
        var offset = start
        while offset < end {
            let chunk = try preadAll(fd: fd, path: path, offset: offset, count: Int(min(end - offset, 1 << 20)))
            guard !chunk.isEmpty else { return false }
            sum = chunk.withUnsafeBytes { CRC32.update(sum, $0) }
            offset += Int64(chunk.count)
        }
        return sum == crc
    }

    /// Reports a complete job, after checking that its output is still there.
    private func reportComplete(_ done: Checkpoint) throws {
        try verifySameJob(done)
        var st = stat()
        guard stat(done.output.path, &st) == 0, Int64(st.st_size) == done.output.length else {
            throw PipeRunError(.dataError, "the checkpoint \(store!.path) says this job is complete, but its output \(done.output.path) is missing or has changed; add --restart to run it again")
        }
        notice("job already complete: \(done.cursor.rowsRead) rows read, \(done.cursor.rowsWritten) written to \(done.output.path); use --restart to run it again")
    }

    /// Writes out what the quarantine writer holds and waits until it is in the file, so that
    /// a write error fails the job (with or without a checkpoint).
    private func sealQuarantine() throws {
        try quarantineWriter?.flush()
        _ = try quarantineSink?.seal()
    }

    /// Refuses a job whose input, output, checkpoint and quarantine file are not four files.
    private func refuseSharedFiles(checkpoint: String, quarantine: String?) throws {
        var named: [(String, String)] = [("input", options.inputPath), ("output", options.outputPath),
                                         ("checkpoint", checkpoint)]
        if let quarantine { named.append(("quarantine file", quarantine)) }
        var seen: [(what: String, path: String, device: UInt64, inode: UInt64)] = []
        for (what, path) in named where path != "-" {
            var st = stat()
            guard stat(path, &st) == 0 else {
                if let twin = seen.first(where: { $0.path == path }) {
                    throw PipeRunError(.usage, "the \(what) and the \(twin.what) are the same file, \(path)")
                }
                seen.append((what, path, 0, 0))
                continue
            }
            if let twin = seen.first(where: { ($0.device, $0.inode) == (UInt64(st.st_dev), UInt64(st.st_ino)) && $0.inode != 0 }) {
                throw PipeRunError(.usage, "the \(what) and the \(twin.what) are the same file, \(path)")
            }
            seen.append((what, path, UInt64(st.st_dev), UInt64(st.st_ino)))
        }
    }

    private func verifySameJob(_ saved: Checkpoint) throws {
        let differences = job.differences(from: saved.job)
        if !differences.isEmpty {
            throw PipeRunError(.usage, "the checkpoint \(store!.path) belongs to a different job: \(differences.joined(separator: "; ")); run the original command to resume it, or add --restart to start this one over")
        }
        let savedPaths = saved.inputs?.map(\.path) ?? [saved.input.path]
        // With patterns, the checkpoint's file list is the job's (checked with the patterns above).
        if job.inputPatterns == nil && savedPaths != paths {
            throw PipeRunError(.usage, "the checkpoint \(store!.path) belongs to a job on \(savedPaths.joined(separator: " ")), not \(paths.joined(separator: " ")); add --restart to start over")
        }
    }

    private func verifyInput(_ saved: Checkpoint) throws {
        let st = input.status
        let was = saved.input
        var changes: [String] = []
        let relaxed = saved.status == .failed
        if !relaxed {
            if UInt64(st.st_dev) != was.device || UInt64(st.st_ino) != was.inode { changes.append("it was replaced by another file") }
            if Int64(st.st_size) != was.size { changes.append("its size was \(was.size) bytes, now \(st.st_size)") }
            if modifiedNanoseconds(st) != was.modifiedNanoseconds { changes.append("it was modified") }
        }
        if Int64(st.st_size) < saved.cursor.inputOffset {
            changes.append("it is shorter than the checkpoint's cursor (byte \(saved.cursor.inputOffset))")
        } else {
            if !relaxed || Int64(was.headLength) <= saved.cursor.inputOffset {
                let head = try input.read(at: 0, count: was.headLength)
                if ContentHash.hex(head) != was.headHash { changes.append("its first \(was.headLength) bytes differ") }
            }
            let offset = saved.cursor.inputOffset
            let before = try input.read(at: offset - Int64(saved.cursor.beforeLength), count: saved.cursor.beforeLength)
            if ContentHash.hex(before) != saved.cursor.beforeHash {
                changes.append("the bytes before the cursor (byte \(offset)) differ")
            }
        }
        if !changes.isEmpty {
            throw PipeRunError(.dataError, "input \(input.path) changed since the checkpoint: \(changes.joined(separator: "; ")); add --restart to start over")
        }
        if relaxed && (modifiedNanoseconds(st) != was.modifiedNanoseconds || Int64(st.st_size) != was.size) {
            notice("input \(input.path) changed after the failure, but not before the bad record: resuming at byte \(saved.cursor.offset)")
        }
    }

    /// Checks that `file` (nil when there is no file at `path`) still ends as the checkpoint
    /// recorded.
    private func verifyOutput(_ state: OutputState, file: OutputFile?, path: String, what: String) throws {
        guard let file else {
            guard state.length == 0 else {
                throw PipeRunError(.dataError, "\(what) \(path) is missing, but the checkpoint records \(state.length) bytes of it; it was deleted or moved: put it back to resume, or add --restart to start over")
            }
            return
        }
        let length = try file.length()
        guard length >= state.length else {
            throw PipeRunError(.dataError, "\(what) \(file.path) is shorter (\(length) bytes) than the checkpoint records (\(state.length)); it was changed or replaced: add --restart to start over")
        }
        let tail = try preadAll(fd: file.fd, path: file.path, offset: state.length - Int64(state.tailLength), count: state.tailLength)
        guard ContentHash.hex(tail) == state.tailHash else {
            throw PipeRunError(.dataError, "\(what) \(file.path) was modified since the checkpoint (its bytes before byte \(state.length) differ); add --restart to start over")
        }
    }
}

/// An error from writing the output, told apart from errors thrown by transforms.
private struct OutputFailure: Error {
    var underlying: any Error
}

/// The type bits (`S_IFREG`, `S_IFCHR`, ...) of the file at `path`, or nil when it does not exist.
func fileKind(_ path: String) -> mode_t? {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
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

private func modifiedNanoseconds(_ st: stat) -> Int64 {
    #if canImport(Darwin)
    Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
    #else
    Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    #endif
}

extension UnsafeRawBufferPointer {
    init(bytes text: StaticString) {
        self.init(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }
}
