/// Starting and resuming a job over ranges (``RangedJobRunner``): what is checked, in which
/// order, before anything is modified, as for a job run in one piece.
extension JobRunner {
    /// Runs the job over ranges when it is one: a checkpoint that says so, or a new job whose
    /// input makes several ranges and whose transforms all declare range support. Nil: the
    /// job runs in one piece.
    func runOverRanges(_ job: Job, _ store: CheckpointStore, saved: Checkpoint?, inputs: InputSequence,
                       transforms: [any RowTransform]) throws -> JobOutcome? {
        let jobs = options.jobs ?? availableCores()
        if let saved {
            guard saved.ranges != nil else { return nil }
            return try resumeRanges(saved, job, store, inputs: inputs, transforms: transforms, jobs: jobs)
        }
        if let path = job.quarantinePath, let kind = fileKind(path), kind != S_IFREG { return nil }
        let (ranges, planNotices) = try RangePlanner(rangeSize: options.rangeSize).plan(first: inputs.file, paths: inputs.paths)
        if jobs > 1 { for text in planNotices { notice(text) } }
        // With --jobs 1 a new job runs in one piece, as before ranges: one reader for the whole
        // input is faster than one per range when they run one after the other.
        guard ranges.count > 1, jobs > 1 else { return nil }
        if let index = transforms.firstIndex(where: { $0.rangeSupport == .none }) {
            if jobs > 1 {
                notice("transform '\(options.transforms[index])' declares no range support: the job runs in one piece, on one core")
            }
            return nil
        }
        guard let columns = try firstColumns(job, try headerReader(inputs.file, job)) else { return nil }
        let reader = RecordReader(source: NoBytes(), format: job.inputFormat, delimiter: job.delimiter)
        let (format, delimiter) = try start(transforms, columns: columns, job)

        // Everything is checked: the outputs are created (or cut back), with their header lines.
        if output == nil { output = try OutputFile.creating(path: options.outputPath, truncatable: true) }
        if let path = job.quarantinePath {
            quarantine = try OutputFile.existing(path: path) ?? OutputFile.creating(path: path)
        }
        try output!.truncate(to: 0)
        let segment = try OutputSegment(file: output!, length: 0, compress: job.compressOutput,
                                        level: options.compressionLevel, format: format, delimiter: delimiter,
                                        quarantine: quarantine, quarantineLength: 0)
        if job.header || job.inputFormat == .lines, format != .lines, !outputColumns(transforms).names.isEmpty {
            let builder = RowBuilder()
            for name in outputColumns(transforms).names { builder.append(name) }
            try builder.withRow { try segment.writer.write($0) }
        }
        let lengths = try segment.seal()
        try segment.sync()
        try store.remove()
        var checkpoint = try CheckpointCommit.fresh(job: job, inputs: inputs, outputPath: output!.path,
                                                    columns: columns.names, transforms: transforms.count)
        checkpoint.output = try outputState(output!, length: lengths.output)
        if let q = quarantine, let length = lengths.quarantine { checkpoint.quarantine = try outputState(q, length: length) }
        checkpoint.ranges = RangedProgress(
            ranges: ranges, appended: 0,
            frontier: .init(offset: 0, line: 1, rowsRead: 0, rowsWritten: 0, badRows: 0,
                            transformStates: Array(repeating: nil, count: transforms.count), endedJob: false,
                            inputBytes: 0, bytes: 0),
            processedInputBytes: 0)
        let runner = RangedJobRunner(
            job: job, registry: registry, store: store, output: output!, quarantine: quarantine, paths: inputs.paths,
            columns: columns, format: format, outputDelimiter: delimiter, jobs: jobs, headerReader: reader, chain: transforms,
            checkpoint: checkpoint, events: events, progress: progress, notice: notice)
        for index in ranges.indices {
            unlink(runner.segmentPath(index))
            unlink(runner.quarantineSegmentPath(index))
        }
        notice("\(ranges.count) ranges, --jobs \(jobs)")
        return try runner.run()
    }

    /// A small reader of the first record of `file`, without reading ahead (the ranges have
    /// readers of their own).
    private func headerReader(_ file: InputFile, _ job: Job) throws -> RecordReader {
        let magic = try file.read(at: 0, count: 2)
        let source: any ByteSource = GzipByteSource.isGzip(magic)
            ? try GzipByteSource(file, pointSpacing: .max, shouldStop: { false })
            : FileByteSource(file, shouldStop: { false })
        try source.seek(to: 0)
        let reader = RecordReader(source: source, format: job.inputFormat, delimiter: job.delimiter, bufferSize: 64 << 10,
                                  maxRecordBytes: options.maxRecordBytes, maxFields: options.maxFields)
        reader.flexible = options.flexible
        return reader
    }

    /// The columns from the first input's first record (its header, or numbered), nil when
    /// that file has no record (the job then runs in one piece, learning them later).
    private func firstColumns(_ job: Job, _ reader: RecordReader) throws -> Columns? {
        if job.inputFormat == .lines { return Columns(["1"]) }
        while true {
            do {
                switch try reader.next() {
                case .record:
                    let row = reader.row
                    return job.header ? Columns((0..<row.count).map { row[$0].string }) : Columns.numbered(row.count)
                case .malformed(let bad):
                    guard job.header else { return nil }
                    throw PipeRunError(.dataError, "\(job.paths[0]): line \(bad.line), byte \(bad.errorOffset): malformed header: \(bad.reason): \(bad.excerpt)")
                case .end:
                    return nil
                }
            } catch is ReadInterrupted {
                continue
            }
        }
    }

    /// Starts `transforms` with `columns` (a chain that cannot run is refused here) and returns
    /// the output's format and delimiter.
    private func start(_ transforms: [any RowTransform], columns: Columns, _ job: Job) throws -> (RecordFormat, UInt8) {
        var current = columns
        for t in transforms { current = try t.start(input: current) }
        var format = options.outputFormat ?? job.inputFormat
        var delimiter = options.outputDelimiter ?? (options.outputFormat == nil ? job.delimiter : format.defaultDelimiter)
        if job.inputFormat == .lines && options.outputFormat == nil && current.count != 1 {
            format = .csv
            delimiter = options.outputDelimiter ?? RecordFormat.csv.defaultDelimiter
        }
        startedColumns = current
        return (format, delimiter)
    }

    private func outputColumns(_ transforms: [any RowTransform]) -> Columns { startedColumns ?? Columns([]) }

    /// Resumes a job over ranges: its inputs (those with ranges still to run) as they were, its
    /// outputs holding what the checkpoint vouches for, each range's segment as long as it
    /// says (or that range runs again).
    private func resumeRanges(_ saved: Checkpoint, _ job: Job, _ store: CheckpointStore, inputs: InputSequence,
                              transforms: [any RowTransform], jobs: Int) throws -> JobOutcome {
        var checkpoint = saved
        var ranged = saved.ranges!
        var identities = saved.inputs ?? [saved.input]
        let damaged = { (what: String) in
            PipeRunError(.dataError, "checkpoint \(store.path) is damaged (\(what)); add --restart to start over")
        }
        guard !ranged.ranges.isEmpty, (0...ranged.ranges.count).contains(ranged.appended) else { throw damaged("ranges") }
        guard ranged.frontier.transformStates.count == transforms.count,
              ranged.ranges.allSatisfy({ $0.file >= 0 && $0.file < identities.count
                  && ($0.run?.transformStates.count ?? transforms.count) == transforms.count }) else {
            throw damaged("it does not fit this job's inputs and transforms")
        }
        let limit: Int64 = 1 << 60
        let sane = { (v: Int64) in v >= 0 && v < limit }
        guard sane(ranged.frontier.offset), ranged.frontier.line >= 1, sane(ranged.frontier.line),
              ranged.ranges.allSatisfy({ r in
                  sane(r.start) && (r.end.map { $0 >= r.start && sane($0) } ?? true)
                      && (r.block.map { sane($0.compressedOffset) && $0.member >= 1 } ?? true)
                      && (r.run.map { run in
                          sane(run.offset) && sane(run.readFrom) && run.readFrom <= run.offset && run.line >= 1
                              && sane(run.line) && run.readFromLine >= 1 && sane(run.rowsRead) && sane(run.rowsWritten)
                              && sane(run.badRows) && (run.segment.map { sane($0.length) } ?? true)
                              && (run.quarantineSegment.map { sane($0.length) } ?? true)
                              && (run.firstOffset.map(sane) ?? true) && (run.firstLine.map { $0 >= 1 } ?? true)
                      } ?? true)
              }) else {
            throw damaged("a range's numbers are out of range")
        }
        let paths = identities.map(\.path)
        let fixedInput = try checkFrontierInput(saved, inputs: inputs)
        if let refusal = ResumeDecision.outputRefusal(saved.output, try observe(output, recorded: saved.output),
                                                      path: saved.output.path, what: "output") {
            throw refusal
        }
        var quarantineLength: Int64 = 0
        if let path = job.quarantinePath {
            if fileKind(path).map({ $0 != S_IFREG }) ?? false {
                throw PipeRunError(.usage, "the quarantine file \(path) of a job over ranges must be a regular file")
            }
            quarantine = try OutputFile.existing(path: path)
            if let q = saved.quarantine, q.path == path {
                if let refusal = ResumeDecision.outputRefusal(q, try observe(quarantine, recorded: q), path: path,
                                                              what: "quarantine file") {
                    throw refusal
                }
                quarantineLength = q.length
            }
        }
        let columns = Columns(saved.inputColumns.isEmpty && job.inputFormat == .lines ? ["1"] : saved.inputColumns)
        let (format, delimiter) = try start(transforms, columns: columns, job)
        for (t, state) in zip(transforms, ranged.frontier.transformStates) {
            guard let state else { continue }
            do { try t.restoreState(state.bytes) } catch {
                throw PipeRunError(.dataError, "cannot restore a transform's state from checkpoint \(store.path): \(error); add --restart to start over")
            }
        }

        // Modify: outputs cut back, ranges whose segments are not as recorded run again.
        if let (file, identity) = fixedInput {
            identities[file] = identity
            checkpoint.inputs = identities
            for i in ranged.ranges.indices where i > ranged.appended && ranged.ranges[i].file == file {
                ranged.ranges[i].run = nil
                unlink("\(store.path).range-\(i)")
                unlink("\(store.path).range-\(i).quarantine")
            }
            notice("input \(paths[file]) changed after the failure, but not before the bad record: resuming at byte \(ranged.ranges[ranged.appended].run!.offset)")
        }
        if output == nil { output = try OutputFile.creating(path: options.outputPath, truncatable: true) }
        try output!.truncate(to: saved.output.length)
        if let path = job.quarantinePath {
            if quarantine == nil { quarantine = try OutputFile.creating(path: path) }
            try quarantine!.truncate(to: quarantineLength)
            if quarantineLength == 0 {
                let header = Array("line,offset,reason,record\n".utf8)
                try header.withUnsafeBytes { try quarantine!.write($0) }
                try quarantine!.drain()
                try quarantine!.sync()
                quarantineLength = Int64(header.count)
            }
            checkpoint.quarantine = try outputState(quarantine!, length: quarantineLength)
        }
        forgetIncompleteSegments(&ranged, job, store)
        checkpoint.ranges = ranged
        checkpoint.runs = saved.runs + 1
        checkpoint.completion = nil
        let reader = RecordReader(source: NoBytes(), format: job.inputFormat, delimiter: job.delimiter)
        let runner = RangedJobRunner(
            job: job, registry: registry, store: store, output: output!, quarantine: quarantine, paths: paths,
            columns: columns, format: format, outputDelimiter: delimiter, jobs: jobs, headerReader: reader, chain: transforms,
            checkpoint: checkpoint, events: events, progress: progress, notice: notice)
        let underWay = ranged.ranges.filter { $0.run != nil && !($0.run!.done) }.count
        notice("resuming: \(ranged.appended) of \(ranged.ranges.count) ranges done, \(underWay) under way, --jobs \(jobs)")
        return try runner.run()
    }

    /// The input file the frontier is in must be as it was (later files are checked when their
    /// turn comes, by the workers, as in a job in one piece: one that vanished or changed before
    /// its turn stops the job, or is left out with --skip-changed-inputs). After a failure, an
    /// input fixed after the bad record resumes there: returns that file and its identity now.
    private func checkFrontierInput(_ saved: Checkpoint, inputs: InputSequence) throws -> (Int, InputIdentity)? {
        let ranged = saved.ranges!
        let identities = saved.inputs ?? [saved.input]
        guard ranged.appended < ranged.ranges.count else { return nil }
        let current = ranged.ranges[ranged.appended].file
        let begun = (0..<ranged.appended).contains { ranged.ranges[$0].file == current && ranged.ranges[$0].skipped != true }
            || ranged.ranges[ranged.appended].run != nil
        guard begun else { return nil }
        let path = identities[current].path
        let file = try InputFile(path: path)
        let changes = InputChanges.sinceStart(identities[current],
                                              now: try inputs.observe(file, headLength: identities[current].headLength))
        guard !changes.isEmpty else { return nil }
        guard saved.status == .failed, let run = ranged.ranges[ranged.appended].run, let hash = run.beforeHash,
              run.offset <= file.size,
              ContentHash.hex(try file.read(at: max(0, run.offset - 65536), count: Int(min(run.offset, 65536)))) == hash
        else {
            throw PipeRunError(.dataError, "input \(path) changed since the checkpoint: \(changes.joined(separator: "; ")); add --restart to start over")
        }
        return (current, try inputs.identity(of: file))
    }

    /// Ranges run ahead whose segment files are missing or shorter than recorded run again.
    private func forgetIncompleteSegments(_ ranged: inout RangedProgress, _ job: Job, _ store: CheckpointStore) {
        let segmentPath = { (i: Int) in "\(store.path).range-\(i)" }
        for i in ranged.appended..<ranged.ranges.count {
            guard let run = ranged.ranges[i].run, run.mode == .ahead else {
                if ranged.ranges[i].run?.mode == .inOrder && i != ranged.appended { ranged.ranges[i].run = nil }
                continue
            }
            let whole = [(run.segment, segmentPath(i)), (run.quarantineSegment, segmentPath(i) + ".quarantine")]
                .allSatisfy { recorded, path in
                    guard let recorded else { return true }
                    var st = stat()
                    return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && Int64(st.st_size) >= recorded.length
                }
            if !whole || (run.quarantineSegment == nil) != (job.quarantinePath == nil) {
                notice("range \(i + 1) runs again: its segment \(segmentPath(i)) is not as the checkpoint records")
                ranged.ranges[i].run = nil
            }
        }
    }
}

/// A source without bytes: the reader of a chain that only finishes.
final class NoBytes: ByteSource {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { 0 }
    func seek(to offset: Int64) throws {}
}
