import Synchronization

/// Runs one range of a job on a thread of its own: its own input file, reader, transform chain
/// and output segment, sharing nothing mutable with the other ranges. It never writes the
/// checkpoint: at every commit it makes its files durable and hands the coordinator
/// (``RangedJobRunner``) a ``RangeRun`` that describes them.
final class RangeWorker: @unchecked Sendable {
    /// What the worker is asked to run.
    struct Assignment {
        var index: Int
        var range: InputRange
        var path: String
        /// The run to continue (a resumed range, or one that starts in order from the
        /// frontier with its states); its `mode` says where the output goes.
        var run: RangeRun
        /// Whether `run` holds a position to resume from (else the start is to be found).
        var positioned: Bool
        /// For ``RangeRun/Mode/inOrder``: the output's and quarantine file's lengths now.
        var outputLength: Int64
        var quarantineLength: Int64
    }

    /// What the worker tells the coordinator.
    enum Report {
        /// A commit: the files hold what `run` describes, synced.
        case progress(Int, RangeRun, [MalformedRecord])
        /// The range is done (or a transform ended the job in it), committed.
        case finished(Int, RangeRun, [MalformedRecord])
        /// Stopped by a signal or by the coordinator, committed.
        case stopped(Int, RangeRun, [MalformedRecord])
        /// A range run ahead hit something that only a run in input order can judge (a bad
        /// record under `--on-error fail`, a transform's error, no record start found): it
        /// runs again in order.
        case misfired(Int, String)
        /// A bad record under `--on-error fail` in a range run in order: `run` points at it.
        case failed(Int, RangeRun, MalformedRecord)
        /// The range's file vanished or changed since the job started (the message says how).
        case inputChanged(Int, String)
        /// Anything else: the job fails with it.
        case error(Int, any Error)
    }

    let job: Job
    let registry: TransformRegistry
    /// The range's file as it was when the job started.
    let identity: InputIdentity
    let columns: Columns
    let format: RecordFormat
    let outputDelimiter: UInt8
    /// Segment paths of range `i` (output and quarantine).
    let segmentPath: (Int) -> String
    let quarantineSegmentPath: (Int) -> String
    /// The job's output and quarantine file, for ranges run in order.
    let output: OutputFile
    let quarantine: OutputFile?
    /// Set by the coordinator: stop at the next row boundary, committing.
    let cancelled: Flag
    let report: (Report) -> Void
    /// Input bytes this worker's current range has processed (for progress), and its rows.
    let processed = Atomic<Int64>(0)
    let rowsRead = Atomic<Int64>(0)
    let rowsWritten = Atomic<Int64>(0)
    /// Whether the reader's read-ahead thread also parses records ahead (when it would
    /// otherwise wait): only when ranges run one at a time, since with several there is no
    /// idle core to give that work to, and it costs more than it saves.
    var parseAhead = true

    init(job: Job, registry: TransformRegistry, identity: InputIdentity, columns: Columns, format: RecordFormat, outputDelimiter: UInt8,
         segmentPath: @escaping (Int) -> String, quarantineSegmentPath: @escaping (Int) -> String,
         output: OutputFile, quarantine: OutputFile?, cancelled: Flag, report: @escaping (Report) -> Void) {
        self.job = job
        self.registry = registry
        self.identity = identity
        self.columns = columns
        self.format = format
        self.outputDelimiter = outputDelimiter
        self.segmentPath = segmentPath
        self.quarantineSegmentPath = quarantineSegmentPath
        self.output = output
        self.quarantine = quarantine
        self.cancelled = cancelled
        self.report = report
    }

    /// The most bad records a report carries for the events stream; the rest are only counted.
    static let badRecordLimit = 10_000

    /// Runs `a` to its end, to a stop, or to an error, and reports how it went.
    func run(_ a: Assignment) {
        do {
            try runRange(a)
        } catch let error as PipeRunError where a.run.mode == .ahead && error.code == .dataError {
            report(.misfired(a.index, error.message))
        } catch let fatal as FatalTransformError where a.run.mode == .ahead {
            report(.misfired(a.index, fatal.message))
        } catch is ReadInterrupted {
            report(.error(a.index, PipeRunError(.interrupted, "interrupted while reading; the last checkpoint stays valid, run the same command to resume")))
        } catch {
            report(.error(a.index, error))
        }
    }

    private func runRange(_ a: Assignment) throws {
        guard let range = try open(a) else { return }
        defer { range.close() }
        let loop: RowLoop = range.loop
        let interval = nanoseconds(job.options.checkpointInterval)
        var nextCommit = interval > 0 ? monotonicNanoseconds().addingSaturating(interval) : UInt64.max
        let ticker = Ticker(periodNanoseconds: min(10_000_000, max(1_000_000, interval / 2)))
        defer { ticker.stop() }
        while true {
            let stop: RowLoop.Stop
            do {
                stop = try loop.run(ticker: ticker)
            } catch let failure as RowLoop.Failure {
                if a.run.mode == .ahead {
                    report(.misfired(a.index, failure.bad.reason))
                    return
                }
                var r = try range.commit(done: false, at: (failure.bad.offset, failure.bad.line))
                if range.opened.gzip == nil {
                    let offset = failure.bad.offset
                    r.beforeHash = ContentHash.hex(try range.file.read(at: max(0, offset - 65536), count: Int(min(offset, 65536))))
                }
                report(.failed(a.index, r, failure.bad))
                return
            }
            switch stop {
            case .tick:
                processed.store(range.processed, ordering: .relaxed)
                rowsRead.store(loop.rowsRead, ordering: .relaxed)
                rowsWritten.store(loop.rowsWritten, ordering: .relaxed)
                if cancelled.isSet {
                    report(.stopped(a.index, try range.commit(done: false), range.takeBadRecords()))
                    return
                }
                if monotonicNanoseconds() >= nextCommit {
                    let r = try range.commit(done: false)
                    if r.done {
                        report(.finished(a.index, r, range.takeBadRecords()))
                        return
                    }
                    report(.progress(a.index, r, range.takeBadRecords()))
                    nextCommit = monotonicNanoseconds().addingSaturating(interval)
                }
            case .stopSignal:
                report(.stopped(a.index, try range.commit(done: false), range.takeBadRecords()))
                return
            case .endOfInput:
                report(.finished(a.index, try range.commit(done: true), range.takeBadRecords()))
                return
            case .endOfRange:
                report(.finished(a.index, try range.commit(done: true, at: loop.rangeStop), range.takeBadRecords()))
                return
            case .endOfJob:
                report(.finished(a.index, try range.commit(done: true, endedJob: true), range.takeBadRecords()))
                return
            }
        }
    }

    /// Opens the range's input (checked against what the job saw), finds or takes its start,
    /// reads a file's header, starts its chain with the run's states and opens its segment;
    /// nil when it was reported instead (a changed input, no record start found).
    private func open(_ a: Assignment) throws -> OpenRange? {
        var run = a.run
        let file: InputFile
        do {
            file = try InputFile(path: a.path)
        } catch let error as PipeRunError {
            report(.inputChanged(a.index, error.message))
            return nil
        }
        if let problem = try inputProblem(file) {
            report(.inputChanged(a.index, problem))
            return nil
        }
        let magic = try file.read(at: 0, count: 2)
        let opened = try InputSequence.reader(on: file, magic: magic, job: job, shouldStop: { false })
        let reader = opened.reader
        if !parseAhead { opened.readAhead?.parsesRecords = .never }
        if !a.positioned {
            guard let start = try findStart(a, file: file, gzip: opened.gzip != nil) else {
                opened.readAhead?.stop()
                report(.misfired(a.index, "no record start found near byte \(a.range.start)"))
                return nil
            }
            run.readFrom = start
            run.offset = start
        }
        let range = OpenRange(assignment: a, file: file, opened: opened, run: run)
        do {
            try position(reader, gzip: opened.gzip, at: run, range: a.range)
            if let end = a.range.end { opened.readAhead?.bulkBytes = max(0, end + 1 - run.offset) + (64 << 10) }
            range.gzipStart = opened.gzip?.compressedBytesRead ?? 0
            range.plainBase = run.inputBytes - run.offset
            if a.range.start == 0 && run.offset == 0 && job.header {
                try InputSequence.checkHeader(of: reader, path: a.path, columns: columns)
                range.run.offset = reader.cursor
                range.run.line = reader.cursorLine
            }
            let transforms = try job.options.transforms.map { try registry.make($0) }
            let loop = RowLoop(reader: reader, transforms: transforms, specs: job.options.transforms,
                               policy: job.options.onError, header: job.header)
            try loop.startTransforms(columns)
            for (t, state) in zip(transforms, run.transformStates) {
                guard let state else { continue }
                try t.restoreState(state.bytes)
            }
            loop.restoreCounts(Cursor(offset: run.offset, line: run.line, inputOffset: 0, beforeHash: "", beforeLength: 0,
                                      rowsRead: run.rowsRead, rowsWritten: run.rowsWritten, badRows: run.badRows))
            if let first = run.firstOffset { loop.restoreFirst(offset: first, line: run.firstLine ?? 1) }
            loop.rangeEnd = a.range.end ?? .max
            let segment = try openSegment(a, run)
            segment.writer.copiesVerbatimRows = format == job.inputFormat
                && (job.inputFormat == .lines || outputDelimiter == job.delimiter)
            loop.attach(segment)
            loop.onBadRecord = { [unowned range] record in
                if range.badRecords.count < Self.badRecordLimit { range.badRecords.append(record) }
            }
            range.start(loop: loop, transforms: transforms, segment: segment,
                        outputPath: output.path, quarantinePath: quarantine?.path)
        } catch {
            opened.readAhead?.stop()
            throw error
        }
        return range
    }

    /// How `file` differs from what the job saw when it started, if it does.
    private func inputProblem(_ file: InputFile) throws -> String? {
        let st = file.status
        let head = try file.read(at: 0, count: min(max(identity.headLength, 0), 65536))
        let now = ObservedInput(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                                modifiedNanoseconds: modifiedNanoseconds(st), headHash: ContentHash.hex(head),
                                beforeCursorHash: nil, isGzip: false)
        let changes = InputChanges.sinceStart(identity, now: now)
        return changes.isEmpty ? nil : "input \(file.path) changed since the job started: " + changes.joined(separator: "; ")
    }


    /// Finds the first record start after the range's nominal start (``RecordStart``): the
    /// file's first byte for a range that starts a file.
    private func findStart(_ a: Assignment, file: InputFile, gzip: Bool) throws -> Int64? {
        if a.range.start == 0 { return 0 }
        var windowSize = 1 << 20
        while true {
            let window: [UInt8]
            if gzip {
                let source = try GzipByteSource(file, pointSpacing: .max, shouldStop: { false })
                try source.resume(from: blockPoint(a.range), to: a.range.start)
                var bytes = [UInt8](repeating: 0, count: windowSize)
                var filled = 0
                while filled < windowSize {
                    let n = try bytes.withUnsafeMutableBytes {
                        try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
                    }
                    if n == 0 { break }
                    filled += n
                }
                window = Array(bytes[0..<filled])
            } else {
                window = try file.read(at: a.range.start, count: windowSize)
            }
            let atEnd = window.count < windowSize
            if let found = window.withUnsafeBytes({
                RecordStart.guess(in: $0, format: job.inputFormat, delimiter: job.delimiter, atEnd: atEnd)
            }) {
                return a.range.start + Int64(found)
            }
            if atEnd {
                // No line end after the nominal start: the range holds no record of its own.
                return a.range.start + Int64(window.count)
            }
            if windowSize >= 16 << 20 { return nil }
            windowSize *= 4
        }
    }

    /// Where decompression starts for a gzip range: its first member.
    private func blockPoint(_ range: InputRange) -> GzipAccessPoint {
        let offset = range.block?.compressedOffset ?? 0
        return GzipAccessPoint(uncompressedOffset: range.block == nil ? 0 : range.start, compressedOffset: offset, bits: 0,
                               member: range.block?.member ?? 1, memberStart: offset, atMemberStart: true, crc: 0,
                               memberLength: 0, window: "", windowLength: 0)
    }

    /// Moves the reader to the run's position.
    private func position(_ reader: RecordReader, gzip: GzipByteSource?, at run: RangeRun, range: InputRange) throws {
        if let gzip {
            try gzip.resume(from: run.gzip ?? blockPoint(range), to: run.offset)
            reader.sourceMoved(to: run.offset, line: run.line)
        } else {
            try reader.seek(to: run.offset, line: run.line)
        }
    }

    /// The output segment of the run: the job's output for a range run in order, else the
    /// range's own segment files, created or cut back to what the run recorded.
    private func openSegment(_ a: Assignment, _ run: RangeRun) throws -> OutputSegment {
        let compress = job.compressOutput
        let level = job.options.compressionLevel
        if run.mode == .inOrder {
            return try OutputSegment(file: output, length: a.outputLength, compress: compress, level: level, format: format,
                                     delimiter: outputDelimiter, quarantine: quarantine,
                                     quarantineLength: a.quarantineLength, quarantineHeader: false)
        }
        let path = segmentPath(a.index)
        let file = try run.segment.flatMap { _ in try OutputFile.existing(path: path) } ?? OutputFile.creating(path: path)
        var q: OutputFile? = nil
        if job.quarantinePath != nil {
            let qpath = quarantineSegmentPath(a.index)
            q = try run.quarantineSegment.flatMap { _ in try OutputFile.existing(path: qpath) } ?? OutputFile.creating(path: qpath)
        }
        let length = run.segment?.length ?? 0
        try file.truncate(to: length)
        return try OutputSegment(file: file, length: length, compress: compress, level: level, format: format,
                                 delimiter: outputDelimiter, quarantine: q, quarantineLength: run.quarantineSegment?.length ?? 0,
                                 quarantineHeader: false)
    }
}

/// The length and last bytes of `file` up to `length`, as a checkpoint records them.
func outputState(_ file: OutputFile, length: Int64) throws -> OutputState {
    let tail = try preadAll(fd: file.fd, path: file.path, offset: max(0, length - 4096), count: Int(min(length, 4096)))
    return OutputState(path: file.path, length: length, tailHash: ContentHash.hex(tail), tailLength: tail.count)
}

/// A flag one thread sets and others look at.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// A range being run: its input, reader, chain and segment, and the run as last committed.
private final class OpenRange {
    let assignment: RangeWorker.Assignment
    let file: InputFile
    let opened: (reader: RecordReader, gzip: GzipByteSource?, readAhead: ReadAheadSource?)
    var run: RangeRun
    /// Compressed bytes read before the run's start (gzip), and input bytes before offset 0 of
    /// the run's numbering (plain), for progress.
    var gzipStart: Int64 = 0
    var plainBase: Int64 = 0
    /// Bad records seen since the last report, for the events stream.
    var badRecords: [MalformedRecord] = []
    private(set) var loop: RowLoop!
    private var transforms: [any RowTransform] = []
    private var segment: OutputSegment!
    private var outputPath = ""
    private var quarantinePath: String?

    init(assignment: RangeWorker.Assignment, file: InputFile,
         opened: (reader: RecordReader, gzip: GzipByteSource?, readAhead: ReadAheadSource?), run: RangeRun) {
        self.assignment = assignment
        self.file = file
        self.opened = opened
        self.run = run
    }

    func start(loop: RowLoop, transforms: [any RowTransform], segment: OutputSegment, outputPath: String,
               quarantinePath: String?) {
        self.loop = loop
        self.transforms = transforms
        self.segment = segment
        self.outputPath = outputPath
        self.quarantinePath = quarantinePath
    }

    func close() {
        opened.readAhead?.stop()
    }

    /// Input bytes processed so far (compressed bytes for gzip), from any thread's view.
    var processed: Int64 {
        opened.gzip.map { assignment.run.inputBytes + $0.compressedBytesRead - gzipStart } ?? plainBase + opened.reader.cursor
    }

    func takeBadRecords() -> [MalformedRecord] {
        defer { badRecords = [] }
        return badRecords
    }

    /// Commits the range: what its transforms hold back is emitted, its segment sealed and
    /// synced; returns the run that describes it (at `stop`, the next range's first record, or
    /// a bad record, when given; else at the reader's cursor).
    func commit(done: Bool, endedJob: Bool = false, at stop: (offset: Int64, line: Int64)? = nil) throws -> RangeRun {
        var r = run
        let reader = opened.reader
        let ended = try loop.willCheckpoint()
        let lengths = try segment.seal()
        try segment.sync()
        r.offset = stop?.offset ?? reader.cursor
        r.line = stop?.line ?? reader.cursorLine
        if let gzip = opened.gzip {
            // The range's decompression started at or before the cursor: a point is there.
            r.gzip = gzip.accessPoint(atOrBefore: r.offset)
            r.inputBytes = (r.gzip?.compressedOffset ?? gzipStart) - (assignment.range.block?.compressedOffset ?? 0)
        } else {
            r.inputBytes = plainBase + r.offset
        }
        if loop.firstOffset >= 0 { (r.firstOffset, r.firstLine) = (loop.firstOffset, loop.firstLine) }
        r.rowsRead = loop.rowsRead
        r.rowsWritten = loop.rowsWritten
        r.badRows = loop.badRows
        r.transformStates = try transforms.map { t in try t.saveState().map(ExactBytes.init) }
        r.done = done || ended
        r.endedJob = endedJob || ended
        if r.mode == .ahead {
            r.segment = try outputState(segment.file, length: lengths.output)
            if let q = segment.quarantineFile, let length = lengths.quarantine {
                r.quarantineSegment = try outputState(q, length: length)
            }
        } else {
            r.segment = OutputState(path: outputPath, length: lengths.output, tailHash: "", tailLength: 0)
            if let length = lengths.quarantine, let quarantinePath {
                r.quarantineSegment = OutputState(path: quarantinePath, length: length, tailHash: "", tailLength: 0)
            }
        }
        run = r
        return r
    }
}
