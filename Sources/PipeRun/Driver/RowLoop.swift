/// The row loop of one range of input: reader → transforms → output segment, with the counts
/// that go into its cursor.
///
/// ``run(ticker:)`` reads records until something needs the caller: the ticker fired (time to
/// look at the clock: a checkpoint, progress, the deadline), a stop signal, the end of the
/// input or a transform that ended the job. It never writes a checkpoint and owns nothing
/// process-wide (signals, progress and events stay with the caller), so several can run side
/// by side, each with its own reader, transforms and segment.
final class RowLoop {
    /// Why ``run(ticker:)`` returned.
    enum Stop: Equatable {
        case tick
        case stopSignal(Int32)
        case endOfInput
        /// A transform has all it wants (`head:N`): the job ends as if the input did.
        case endOfJob
        /// The next record starts after ``rangeEnd``: it belongs to the next range.
        case endOfRange
    }

    /// A bad record under `--on-error fail`: the job stops at it.
    struct Failure: Error {
        var bad: MalformedRecord
    }

    /// The chain was refused at the first record of a job without a header, when the columns
    /// became known (an unknown column, say).
    struct ColumnsRefused: Error {
        var error: PipeRunError
    }

    @exclusivity(unchecked) var reader: RecordReader
    let transforms: [any RowTransform]
    /// The transforms as written, for messages.
    private let specs: [String]
    private let policy: ErrorPolicy
    private let header: Bool
    @exclusivity(unchecked) private(set) var rowsRead: Int64 = 0
    @exclusivity(unchecked) private(set) var rowsWritten: Int64 = 0
    @exclusivity(unchecked) private(set) var badRows: Int64 = 0
    /// Whether the transforms have been started (without a header, at the first record).
    @exclusivity(unchecked) private(set) var columnsKnown = false
    /// The columns numbered at the first record of a job without a header.
    private(set) var numberedColumns: [String]?
    private(set) var outputColumns = Columns([])
    /// Sees every bad record (the events stream).
    var onBadRecord: (MalformedRecord) -> Void = { _ in }
    /// The range's records are those that start at or before this offset (see ``InputRange``);
    /// the loop stops at the first record after it, without taking it.
    @exclusivity(unchecked) var rangeEnd = Int64.max
    /// The first record's offset and line, once read (-1 before): an ahead range is proven
    /// when the range before it ends exactly there.
    @exclusivity(unchecked) private(set) var firstOffset: Int64 = -1
    @exclusivity(unchecked) private(set) var firstLine: Int64 = 0
    /// Where the loop stopped at ``Stop/endOfRange``: the offset and line of the record it did
    /// not take (the next range's first).
    @exclusivity(unchecked) private(set) var rangeStop: (offset: Int64, line: Int64)?
    @exclusivity(unchecked) private var writer: RecordWriter!
    private var segment: OutputSegment!
    /// Stage `i` takes a row through transforms `i...` to the writer (see ``attach(_:)``).
    private var stages: [(Row) throws -> Void] = []
    /// Stage 0, kept apart: a closure read from an array is called through a conversion thunk.
    private var firstStage: (Row) throws -> Void = { _ in }

    init(reader: RecordReader, transforms: [any RowTransform], specs: [String], policy: ErrorPolicy, header: Bool) {
        self.reader = reader
        self.transforms = transforms
        self.specs = specs
        self.policy = policy
        self.header = header
    }

    /// Starts the transforms with the input's columns; the output's are known then.
    func startTransforms(_ columns: Columns) throws {
        var current = columns
        for t in transforms { current = try t.start(input: current) }
        outputColumns = current
        if header || !columns.names.isEmpty { reader.expectedFields = columns.count }
        columnsKnown = true
    }

    /// Takes transforms already started with `columns` (the outputs' columns are theirs).
    func markStarted(_ columns: Columns) {
        columnsKnown = true
    }

    /// Takes up the counts of a checkpoint's cursor.
    func restoreCounts(_ cursor: Cursor) {
        rowsRead = cursor.rowsRead
        rowsWritten = cursor.rowsWritten
        badRows = cursor.badRows
    }

    /// Sends the rows to `segment`, building ``stages``: for each stage, a closure that hands a
    /// row to that stage's transform with the next stage's closure as `emit`, the last one
    /// writing. (Closures that hold their transform and their successor: the per-row path does
    /// no lookups and no reference counting.)
    func attach(_ segment: OutputSegment) {
        self.segment = segment
        let writer = segment.writer
        self.writer = writer
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

    /// Reads and processes records until the caller is needed (see ``Stop``).
    ///
    /// The hot loop of the job, hence its length: one stop-flag load and one ticker flag per
    /// record, the record handed straight to the first stage.
    func run(ticker: Ticker) throws -> Stop {
        // Locals, not properties: a property's object is retained around every call on it.
        let firstStage = self.firstStage
        let reader = self.reader
        let writer = self.writer!
        while true {
            let signal = receivedStopSignal.load(ordering: .relaxed)
            if signal != 0 { return .stopSignal(signal) }
            if ticker.fired { return .tick }
            let next: RecordReader.Next
            do {
                next = try reader.next()
            } catch is ReadInterrupted {
                continue
            }
            switch next {
            case .end:
                return .endOfInput
            case .record:
                let offset = reader.recordOffset
                if offset > rangeEnd || firstOffset < 0 {
                    if firstOffset < 0 { (firstOffset, firstLine) = (offset, reader.recordLine) }
                    if offset > rangeEnd {
                        rangeStop = (offset, reader.recordLine)
                        return .endOfRange
                    }
                }
                if !columnsKnown { try learnColumns() }
                rowsRead += 1
                writer.beginRecord()
                let row = reader.row
                do {
                    try firstStage(row)
                } catch let failure as OutputFailure {
                    throw failure.underlying
                } catch is EndOfJob {
                    return .endOfJob
                } catch let fatal as FatalTransformError {
                    throw PipeRunError(.dataError, fatal.message)
                } catch {
                    writer.discardRecord()
                    let message = (error as? PipeRunError)?.message ?? "\(error)"
                    let bad = MalformedRecord(reason: "transform failed: \(message)", offset: row.offset,
                                              errorOffset: row.offset, line: row.line, raw: Array(reader.rawRecord))
                    try handleBadRecord(bad, countedAsRead: true)
                }
            case .malformed(let bad):
                if bad.offset > rangeEnd || firstOffset < 0 {
                    if firstOffset < 0 { (firstOffset, firstLine) = (bad.offset, bad.line) }
                    if bad.offset > rangeEnd {
                        rangeStop = (bad.offset, bad.line)
                        return .endOfRange
                    }
                }
                try handleBadRecord(bad, countedAsRead: false)
            }
        }
    }

    /// Sets where the first record is when the range resumes past it.
    func restoreFirst(offset: Int64, line: Int64) {
        (firstOffset, firstLine) = (offset, line)
    }

    /// Numbers the columns at the first record of a job without a header, and starts the
    /// transforms with them.
    private func learnColumns() throws {
        let columns = Columns.numbered(reader.row.count)
        do {
            try startTransforms(columns)
        } catch let error as PipeRunError {
            throw ColumnsRefused(error: error)
        }
        numberedColumns = columns.names
    }

    private func handleBadRecord(_ bad: MalformedRecord, countedAsRead: Bool) throws {
        onBadRecord(bad)
        switch policy {
        case .fail:
            if countedAsRead { rowsRead -= 1 }
            throw Failure(bad: bad)
        case .skip:
            badRows += 1
        case .quarantine:
            badRows += 1
            try segment.quarantine(bad)
        }
    }

    /// Lets each transform emit what it holds back before a checkpoint (in chain order);
    /// returns true when one of them ended the job (`head:N` with all it wants).
    func willCheckpoint() throws -> Bool {
        var ended = false
        for stage in transforms.indices {
            do {
                try transforms[stage].willCheckpoint { try stages[stage + 1]($0) }
            } catch is EndOfJob {
                ended = true
            }
        }
        return ended
    }

    /// Runs every transform's `finish` at the end of the input, in chain order.
    func finish() throws {
        if !columnsKnown { try startTransforms(Columns([])) }
        for stage in transforms.indices {
            do {
                try transforms[stage].finish { try stages[stage + 1]($0) }
            } catch is EndOfJob {
                continue
            } catch let failure as OutputFailure {
                throw failure.underlying
            } catch let error as PipeRunError {
                throw error
            } catch let fatal as FatalTransformError {
                throw PipeRunError(.dataError, fatal.message)
            } catch {
                throw PipeRunError(.dataError, "transform '\(specs[stage])' failed at the end of the input: \(error)")
            }
        }
    }

    /// Writes a row of strings (the header line).
    func writeRow(strings: [String]) throws {
        let builder = RowBuilder()
        for s in strings { builder.append(s) }
        try builder.withRow { try writer.write($0) }
    }
}

/// An error from writing the output, told apart from errors thrown by transforms.
struct OutputFailure: Error {
    var underlying: any Error
}
