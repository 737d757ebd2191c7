/// Runs one job: reads records, passes them through the transforms, writes the output, and
/// checkpoints so that the job can be resumed with exactly-once output.
///
/// The loop is: read a record → transforms → output buffer. Every `checkpointInterval`
/// seconds, and whenever the job stops, the output is flushed and synced and then the
/// checkpoint is replaced atomically, so it never describes output that is not on disk.
/// Resuming truncates the output back to the checkpoint's length, seeks the input to its
/// cursor and restores the transforms' states.
public final class JobRunner {
    public let options: JobOptions
    let registry: TransformRegistry
    /// Where one-line notices go (standard error in the command-line tool).
    let notice: (String) -> Void

    @exclusivity(unchecked) private var transforms: [any RowTransform] = []
    @exclusivity(unchecked) private var writer: RecordWriter!
    private var quarantineWriter: RecordWriter?
    private var input: InputFile!
    private var output: OutputFile!
    private var quarantineFile: OutputFile?
    private var store: CheckpointStore?
    private var checkpoint: Checkpoint?
    private var job: JobDescription!
    @exclusivity(unchecked) private var rowsRead: Int64 = 0
    @exclusivity(unchecked) private var rowsWritten: Int64 = 0
    @exclusivity(unchecked) private var badRows: Int64 = 0
    /// Whether the transforms have been started (without a header, at the first record).
    @exclusivity(unchecked) private var columnsKnown = false

    public init(options: JobOptions, registry: TransformRegistry = .builtIn,
                notice: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.registry = registry
        self.notice = notice
    }

    /// Runs the job to its end, to an interruption, or to an error (a ``PipeRunError``).
    public func run() throws -> JobOutcome {
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

        input = try InputFile(path: options.inputPath)
        let resumable = input.isSeekable && options.outputPath != "-"
        if !resumable {
            let what = options.outputPath == "-" ? "output to standard output" : "input that is not a regular file"
            notice("note: \(what) cannot be resumed; this run writes no checkpoint")
        }
        let checkpointPath = options.checkpointPath ?? CheckpointStore.defaultPath(forOutput: options.outputPath)
        if resumable {
            let store = CheckpointStore(path: checkpointPath)
            self.store = store
            // A complete job is reported without opening (or creating) anything.
            if !options.restart, let done = try store.load(), done.status == .complete {
                try verifySameJob(done)
                notice("job already complete: \(done.cursor.rowsRead) rows read, \(done.cursor.rowsWritten) written to \(done.output.path); use --restart to run it again")
                return .alreadyComplete
            }
        }

        output = try OutputFile(path: options.outputPath)
        if options.handleSignals { StopSignals.install(graceSeconds: options.graceSeconds) }

        var saved: Checkpoint? = nil
        if let store {
            if options.restart {
                try store.remove()
            } else {
                saved = try store.load()
            }
        }
        if let saved, saved.status == .complete {
            try verifySameJob(saved)
            notice("job already complete: \(saved.cursor.rowsRead) rows read, \(saved.cursor.rowsWritten) written to \(saved.output.path)")
            return .alreadyComplete
        }

        let source = FileByteSource(input) { receivedStopSignal.load(ordering: .relaxed) != 0 }
        let reader = RecordReader(source: source, format: inputFormat, delimiter: delimiter,
                                  maxRecordBytes: options.maxRecordBytes)
        reader.flexible = options.flexible

        // The input columns: from the checkpoint when resuming, else from the first record.
        var inputColumns: Columns? = nil
        if let saved {
            try verifySameJob(saved)
            try verifyInput(saved)
            try verifyOutput(saved.output, file: output, what: "output")
            inputColumns = Columns(saved.inputColumns)
        } else if header {
            switch try reader.next() {
            case .record:
                let row = reader.row
                inputColumns = Columns((0..<row.count).map { row[$0].string })
            case .malformed(let bad):
                throw PipeRunError(.dataError, "\(input.path): line \(bad.line), byte \(bad.errorOffset): malformed header: \(bad.reason): \(bad.excerpt)")
            case .end:
                inputColumns = Columns([])
            }
        }

        // Choose the output format now that the output's width may be known.
        var outputFormat = options.outputFormat ?? inputFormat
        var outputDelimiter = options.outputDelimiter ?? (options.outputFormat == nil ? delimiter : outputFormat.defaultDelimiter)


        // Restore or start the output.
        var startLength: Int64 = 0
        if let saved {
            startLength = saved.output.length
            try output.truncate(to: startLength)
            rowsRead = saved.cursor.rowsRead
            rowsWritten = saved.cursor.rowsWritten
            badRows = saved.cursor.badRows
        } else if !output.isStandardOutput {
            try output.truncate(to: 0)
        }

        var outputColumns = Columns([])
        func startTransforms(_ columns: Columns) throws {
            var current = columns
            for t in transforms { current = try t.start(input: current) }
            outputColumns = current
            if inputFormat == .lines && options.outputFormat == nil && outputColumns.count != 1 {
                outputFormat = .csv
                outputDelimiter = options.outputDelimiter ?? RecordFormat.csv.defaultDelimiter
            }
            if header { reader.expectedFields = columns.count }
            columnsKnown = true
        }
        if let inputColumns {
            try startTransforms(inputColumns)
        }
        if let saved {
            // Resume: restore state and move the input to the cursor.
            guard saved.transformStates.count == transforms.count else {
                throw PipeRunError(.dataError, "checkpoint \(store!.path) holds \(saved.transformStates.count) transform states for \(transforms.count) transforms; run with --restart")
            }
            for (t, state) in zip(transforms, saved.transformStates) {
                if let state {
                    do { try t.restoreState(Array(state.utf8)) } catch {
                        throw PipeRunError(.dataError, "cannot restore a transform's state from checkpoint \(store!.path): \(error); run with --restart")
                    }
                }
            }
            if !header, let n = saved.inputColumns.count as Int?, n > 0 { reader.expectedFields = n }
            try reader.seek(to: saved.cursor.offset, line: saved.cursor.line)
        }

        writer = RecordWriter(output: output, format: outputFormat, delimiter: outputDelimiter, startingAt: startLength)
        if case .quarantine(let path) = options.onError {
            let file = try OutputFile(path: path)
            var length: Int64 = 0
            if let saved, let q = saved.quarantine, q.path == path {
                try verifyOutput(q, file: file, what: "quarantine file")
                length = q.length
            }
            try file.truncate(to: length)
            quarantineFile = file
            quarantineWriter = RecordWriter(output: file, format: .csv, delimiter: 44, startingAt: length)
            if length == 0 {
                try quarantineWriter!.writeRaw(UnsafeRawBufferPointer(bytes: "line,offset,reason,record\n"))
            }
        }
        if saved == nil, header, columnsKnown, outputFormat != .lines {
            try writeRow(strings: outputColumns.names)
        }

        checkpoint = saved
        if let saved {
            checkpoint!.runs = saved.runs + 1
            notice("resuming at row \(rowsRead), byte \(saved.cursor.offset) of \(input.size) (\(percent(saved.cursor.offset))%)")
        }
        if let store, saved == nil {
            checkpoint = try freshCheckpoint(reader: reader, columns: inputColumns?.names ?? [])
            _ = store
        }
        if store != nil {
            try writeCheckpoint(status: .running, reader: reader)
        }

        // The loop.
        let start = monotonicNanoseconds()
        let interval = options.checkpointInterval > 0 ? UInt64(options.checkpointInterval * 1e9) : UInt64.max
        var nextCheckpoint = interval == .max ? UInt64.max : start + interval
        let deadline = options.maxRuntime.map { start + UInt64(max(0, $0) * 1e9) } ?? UInt64.max
        var sinceClock = 0
        var stopReason: String? = nil

        loop: while true {
            if receivedStopSignal.load(ordering: .relaxed) != 0 {
                stopReason = StopSignals.name(receivedStopSignal.load(ordering: .relaxed))
                break
            }
            sinceClock += 1
            if sinceClock >= 64 {
                sinceClock = 0
                let now = monotonicNanoseconds()
                if now >= deadline {
                    stopReason = "--max-runtime"
                    break
                }
                if now >= nextCheckpoint {
                    try writeCheckpoint(status: .running, reader: reader)
                    nextCheckpoint = monotonicNanoseconds() + interval
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
                break loop
            case .record:
                if !columnsKnown {
                    try startTransforms(Columns.numbered(reader.row.count))
                    checkpoint?.inputColumns = Columns.numbered(reader.row.count).names
                    reader.expectedFields = reader.row.count
                }
                rowsRead += 1
                let mark = writer.length
                let row = reader.row
                do {
                    try push(row, stage: 0)
                } catch let failure as OutputFailure {
                    throw failure.underlying
                } catch {
                    try writer.rewind(to: mark)
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
            if store != nil {
                try writeCheckpoint(status: .interrupted, reader: reader, reason: stopReason)
                notice("interrupted (\(stopReason)) at row \(rowsRead), byte \(reader.cursor) of \(input.size) (\(percent(reader.cursor))%); run the same command to resume")
            } else {
                notice("interrupted (\(stopReason)) at row \(rowsRead); this run cannot be resumed")
            }
            return .interrupted
        }

        if !columnsKnown { try startTransforms(Columns([])) }
        for stage in transforms.indices {
            try transforms[stage].finish { try push($0, stage: stage + 1) }
        }
        try writer.flush()
        if store != nil {
            try writeCheckpoint(status: .complete, reader: reader)
        }
        var summary = "done: \(rowsRead) rows read, \(rowsWritten) written"
        if badRows > 0 { summary += ", \(badRows) bad rows " + (quarantineWriter != nil ? "quarantined" : "skipped") }
        notice(summary)
        return .completed
    }

    /// Passes `row` to the transform at `stage`, or writes it after the last one.
    private func push(_ row: Row, stage: Int) throws {
        if stage == transforms.count {
            do {
                try writer.write(row)
            } catch {
                throw OutputFailure(underlying: error)
            }
            rowsWritten += 1
            return
        }
        try transforms[stage].process(row) { try push($0, stage: stage + 1) }
    }

    private func writeRow(strings: [String]) throws {
        let builder = RowBuilder()
        for s in strings { builder.append(s) }
        try builder.withRow { try writer.write($0) }
    }

    private func handleBadRecord(_ bad: MalformedRecord, reader: RecordReader, countedAsRead: Bool) throws {
        let location = "\(input.path): line \(bad.line), byte \(bad.errorOffset)"
        switch options.onError {
        case .fail:
            if countedAsRead { rowsRead -= 1 }
            try writer.flush()
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
            bad.raw.withUnsafeBytes { builder.appendCopy($0) }
            try builder.withRow { try quarantineWriter!.write($0) }
        }
    }

    // MARK: Checkpoints

    private func freshCheckpoint(reader: RecordReader, columns: [String]) throws -> Checkpoint {
        let head = try input.read(at: 0, count: 64 << 10)
        let st = input.status
        let identity = InputIdentity(
            path: input.path, size: Int64(st.st_size), modifiedNanoseconds: modifiedNanoseconds(st),
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), headHash: ContentHash.hex(head), headLength: head.count)
        let now = isoTimestamp()
        return Checkpoint(
            status: .running, reason: nil, pid: getpid(), job: job, jobFingerprint: job.fingerprint, input: identity,
            inputColumns: columns,
            cursor: Cursor(offset: 0, line: 1, beforeHash: ContentHash.hex([]), beforeLength: 0, rowsRead: 0,
                           rowsWritten: 0, badRows: 0),
            output: OutputState(path: output.path, length: 0, tailHash: ContentHash.hex([]), tailLength: 0),
            quarantine: nil, transformStates: transforms.map { _ in nil }, createdAt: now, updatedAt: now,
            runs: 1, interruptions: 0)
    }

    /// Flushes and syncs the outputs, then atomically replaces the checkpoint.
    private func writeCheckpoint(status: Checkpoint.Status, reader: RecordReader, reason: String? = nil,
                                 at position: (offset: Int64, line: Int64)? = nil) throws {
        guard let store, var cp = checkpoint else { return }
        for t in transforms { try t.willCheckpoint() }
        try writer.flush()
        try output.sync()
        if let quarantineWriter, let quarantineFile {
            try quarantineWriter.flush()
            try quarantineFile.sync()
            cp.quarantine = try outputState(quarantineFile, length: quarantineWriter.length)
        }
        let offset = position?.offset ?? reader.cursor
        // Up to 64 KiB before the cursor: after a failure, this is what proves that a fixed
        // input still agrees with the output written so far.
        let before = try input.read(at: max(0, offset - 65536), count: Int(min(offset, 65536)))
        cp.cursor = Cursor(offset: offset, line: position?.line ?? reader.cursorLine,
                           beforeHash: ContentHash.hex(before), beforeLength: before.count,
                           rowsRead: rowsRead, rowsWritten: rowsWritten, badRows: badRows)
        cp.output = try outputState(output, length: writer.length)
        cp.transformStates = try transforms.map { t in try t.saveState().map { String(decoding: $0, as: UTF8.self) } }
        cp.status = status
        cp.reason = reason
        cp.pid = getpid()
        cp.updatedAt = isoTimestamp()
        if status == .interrupted { cp.interruptions += 1 }
        try store.save(cp)
        checkpoint = cp
    }

    private func outputState(_ file: OutputFile, length: Int64) throws -> OutputState {
        let tail = try preadAll(fd: file.fd, path: file.path, offset: max(0, length - 4096), count: Int(min(length, 4096)))
        return OutputState(path: file.path, length: length, tailHash: ContentHash.hex(tail), tailLength: tail.count)
    }

    private func percent(_ offset: Int64) -> String {
        let size = input.size
        guard size > 0 else { return "100.0" }
        let tenths = Double(offset) * 1000 / Double(size)
        return String(Double(Int(tenths)) / 10)
    }

    // MARK: Verifying a checkpoint before resuming

    private func verifySameJob(_ saved: Checkpoint) throws {
        let differences = job.differences(from: saved.job)
        if !differences.isEmpty {
            throw PipeRunError(.usage, "the checkpoint \(store!.path) belongs to a different job: \(differences.joined(separator: "; ")); run the original command to resume it, or add --restart to start this one over")
        }
        if saved.input.path != input.path {
            throw PipeRunError(.usage, "the checkpoint \(store!.path) belongs to a job on input \(saved.input.path), not \(input.path); add --restart to start over")
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
        if Int64(st.st_size) < saved.cursor.offset {
            changes.append("it is shorter than the checkpoint's cursor (byte \(saved.cursor.offset))")
        } else {
            if !relaxed || Int64(was.headLength) <= saved.cursor.offset {
                let head = try input.read(at: 0, count: was.headLength)
                if ContentHash.hex(head) != was.headHash { changes.append("its first \(was.headLength) bytes differ") }
            }
            let offset = saved.cursor.offset
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
            checkpoint?.input.size = Int64(st.st_size)
        }
    }

    private func verifyOutput(_ state: OutputState, file: OutputFile, what: String) throws {
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
