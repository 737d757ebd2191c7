/// The job's input files, read one after the other as one input: which one is open, how it
/// is decompressed and read ahead, and what every file was when the job started.
final class InputSequence {
    private let job: Job
    /// The job's input paths (a resumed job's come from its checkpoint) and the one being read.
    private(set) var paths: [String]
    private(set) var index = 0
    /// Every input's identity when the job started.
    var identities: [InputIdentity] = []
    private(set) var file: InputFile
    private(set) var gzip: GzipByteSource?
    private var readAhead: ReadAheadSource?
    /// Uncompressed bytes of the input files finished (over all runs), and input bytes (as
    /// stored: compressed for gzip) of the files before the current one.
    var bytesOfEarlierFiles: Int64 = 0
    private(set) var sizeOfEarlierFiles: Int64 = 0
    /// Where one-line notices go.
    private let notice: (String) -> Void

    /// Opens the first input (a missing one: status 66) and checks that the others exist.
    init(_ job: Job, notice: @escaping (String) -> Void) throws {
        self.job = job
        self.notice = notice
        paths = job.paths
        file = try InputFile(path: paths[0])
        for path in paths.dropFirst() where fileKind(path) == nil {
            throw PipeRunError(.noInput, "cannot open input \(path): \(describe(errno: ENOENT))")
        }
    }

    deinit {
        readAhead?.stop()
    }

    /// Whether a checkpoint can be kept: every input is a regular file.
    var isResumable: Bool {
        file.isSeekable && paths.allSatisfy { fileKind($0) == S_IFREG }
    }

    /// Goes to the file `saved` was in, and to its file list when the job's patterns matched
    /// other files then (those that match now but did not then are not part of the job).
    func moveTo(_ saved: Checkpoint, checkpointPath: String) throws {
        if job.options.inputPatterns != nil, saved.job.inputPatterns == job.options.inputPatterns, let list = saved.inputs {
            paths = list.map(\.path)
        }
        let index = saved.cursor.file ?? 0
        guard index < paths.count else {
            throw PipeRunError(.dataError, "checkpoint \(checkpointPath) is damaged (cursor.file is out of range); add --restart to start over")
        }
        if index > 0 || paths[0] != file.path {
            self.index = index
            file = try InputFile(path: paths[index])
        }
        identities = saved.inputs ?? [saved.input]
        sizeOfEarlierFiles = identities.prefix(index).reduce(0) { $0 + $1.size }
        bytesOfEarlierFiles = saved.cursor.bytesBefore ?? 0
    }

    /// The size of all input files.
    var totalSize: Int64 {
        identities.isEmpty ? file.size : identities.reduce(0) { $0 + $1.size }
    }

    /// Opens a reader on the current file: gzip (decompressed on a read-ahead thread) or plain.
    /// Returns nil when a signal interrupted the first read of a pipe.
    func openReader() throws -> RecordReader? {
        let shouldStop = { receivedStopSignal.load(ordering: .relaxed) != 0 }
        let magic: [UInt8]
        do {
            magic = try file.sniff()
        } catch is ReadInterrupted {
            return nil
        }
        readAhead?.stop()
        readAhead = nil
        gzip = nil
        let opened = try Self.reader(on: file, magic: magic, job: job, shouldStop: shouldStop)
        gzip = opened.gzip
        readAhead = opened.readAhead
        return opened.reader
    }

    /// A reader on `file` (whose first bytes are `magic`): gzip decompressed on a read-ahead
    /// thread, a regular file read ahead, or a pipe read directly.
    static func reader(on file: InputFile, magic: [UInt8], job: Job, shouldStop: @escaping () -> Bool) throws
        -> (reader: RecordReader, gzip: GzipByteSource?, readAhead: ReadAheadSource?) {
        let source: any ByteSource
        var gzipSource: GzipByteSource? = nil
        var readAhead: ReadAheadSource? = nil
        let options = job.options
        // A format that parses by the list of special bytes (CSV, TSV) gets each block's
        // listed on the read-ahead thread.
        let indexing = job.inputFormat.syntax.usesSpecialBytes ? job.delimiter : nil
        if GzipByteSource.isGzip(magic) {
            // (A regular file's read that a signal interrupts is retried, as below; a pipe's read
            // stops the job.)
            let gzip = try GzipByteSource(file, prefix: file.isSeekable ? [] : magic,
                                          pointSpacing: options.gzipAccessPointSpacing,
                                          shouldStop: file.isSeekable ? { false } : shouldStop)
            gzipSource = gzip
            // Decompress on a second thread, which starts at the first read (after a resume).
            let ahead = ReadAheadSource(wrapping: gzip, indexing: indexing, shouldStop: shouldStop)
            readAhead = ahead
            source = ahead
        } else if file.isSeekable {
            // A regular file never blocks a read for long: read ahead, so the main thread parses.
            // (A read that a signal interrupts is retried: the reader notices the signal itself,
            // and an interrupted read-ahead would stay failed.)
            let ahead = ReadAheadSource(wrapping: FileByteSource(file, shouldStop: { false }), indexing: indexing,
                                        shouldStop: shouldStop)
            readAhead = ahead
            source = ahead
        } else {
            source = FileByteSource(file, prefix: magic, shouldStop: shouldStop)
        }
        let reader = RecordReader(source: source, format: job.inputFormat, delimiter: job.delimiter,
                                  // Room for a whole read-ahead block after a partial record.
                                  bufferSize: min(2 << 20, options.maxRecordBytes),
                                  maxRecordBytes: options.maxRecordBytes, maxFields: options.maxFields)
        reader.flexible = options.flexible
        return (reader, gzipSource, readAhead)
    }

    /// Stops reading ahead (the job is over, or stopped).
    func stop() {
        readAhead?.stop()
    }

    /// Moves on to the next input file that is as it was when the job started (or leaves out
    /// the ones that changed, with --skip-changed-inputs), checks its header against
    /// `columns`, and returns its reader; nil when there is none left.
    func advance(after reader: RecordReader, columns: Columns?) throws -> RecordReader? {
        let lastRead = (index: index, sizeBefore: sizeOfEarlierFiles, bytes: bytesOfEarlierFiles)
        bytesOfEarlierFiles += reader.cursor
        sizeOfEarlierFiles += file.size
        readAhead?.stop()
        defer {
            // Every remaining input was left out: the cursor stays at the end of the last one read.
            if file.path != paths[index] {
                (index, sizeOfEarlierFiles, bytesOfEarlierFiles) = lastRead
            }
        }
        while index + 1 < paths.count {
            index += 1
            let path = paths[index]
            var problem: String? = nil
            var next: InputFile? = nil
            do {
                next = try InputFile(path: path)
            } catch let error as PipeRunError {
                problem = error.message
            }
            if let next, index < identities.count {
                let changes = InputChanges.sinceStart(identities[index], now: try observe(next, headLength: identities[index].headLength))
                if !changes.isEmpty { problem = "input \(path) changed since the job started: " + changes.joined(separator: "; ") }
            }
            if let problem {
                if job.options.skipChangedInputs {
                    notice("skipping: \(problem)")
                    continue
                }
                throw PipeRunError(.dataError, "\(problem); rerun with --skip-changed-inputs to leave it out, or --restart")
            }
            file = next!
            guard let following = try openReader() else { return nil }
            following.expectedFields = reader.expectedFields
            if job.header { try Self.checkHeader(of: following, path: path, columns: columns) }
            return following
        }
        return nil
    }

    /// Reads a later file's header, which must name the first file's columns. The header is
    /// read whole even if a stop signal comes now: the job then stops at the next row
    /// boundary, with a cursor after this file's header.
    static func checkHeader(of reader: RecordReader, path: String, columns: Columns?) throws {
        var first: RecordReader.Next
        while true {
            do {
                first = try reader.next()
                break
            } catch is ReadInterrupted {
                continue
            }
        }
        switch first {
        case .record:
            let row = reader.row
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

    // MARK: Identities

    /// Every input's identity now, for a job that starts (its first 64 KiB hashed).
    func recordIdentities() throws {
        identities = [try identity(of: file)]
        for path in paths.dropFirst() {
            identities.append(try identity(of: InputFile(path: path)))
        }
    }

    func identity(of input: InputFile) throws -> InputIdentity {
        let head = try input.read(at: 0, count: 64 << 10)
        let st = input.status
        return InputIdentity(
            path: input.path, size: Int64(st.st_size), modifiedNanoseconds: modifiedNanoseconds(st),
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), headHash: ContentHash.hex(head), headLength: head.count)
    }

    /// The current file's identity now (a failed job that resumes takes the fixed file's).
    func currentIdentity() throws -> InputIdentity {
        try identity(of: file)
    }

    /// `input` as it is now: its identity, the hash of its first `headLength` bytes and, for
    /// a checkpoint's cursor, of the bytes before it. (The lengths come from a checkpoint that
    /// may be damaged: at most 64 KiB is read, and ``ResumeDecision`` refuses such a file.)
    func observe(_ input: InputFile, headLength: Int, before cursor: Cursor? = nil, isGzip: Bool = false) throws -> ObservedInput {
        let st = input.status
        var observed = ObservedInput(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            modifiedNanoseconds: modifiedNanoseconds(st),
            headHash: ContentHash.hex(try input.read(at: 0, count: min(max(headLength, 0), 65536))),
            beforeCursorHash: nil, isGzip: isGzip)
        if let cursor, (0...65536).contains(cursor.beforeLength), Int64(cursor.beforeLength) <= cursor.inputOffset,
           cursor.inputOffset <= observed.size {
            observed.beforeCursorHash = ContentHash.hex(
                try input.read(at: cursor.inputOffset - Int64(cursor.beforeLength), count: cursor.beforeLength))
        }
        return observed
    }

    /// Up to 64 KiB of the current file before `offset`: after a failure, what proves that a
    /// fixed input still agrees with the output written so far.
    func bytes(before offset: Int64) throws -> [UInt8] {
        try file.read(at: max(0, offset - 65536), count: Int(min(offset, 65536)))
    }
}

func modifiedNanoseconds(_ st: stat) -> Int64 {
    #if canImport(Darwin)
    Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
    #else
    Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    #endif
}
