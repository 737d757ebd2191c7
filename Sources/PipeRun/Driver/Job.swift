/// What a job is, as plain values worked out once from its options: the files it reads and
/// writes, the formats, the transform chain as written, and the description its checkpoints
/// are matched against (``JobDescription``, whose fingerprint names the job).
///
/// Making one checks the options that need no file: a job that cannot be run is refused
/// before anything is opened.
struct Job {
    let options: JobOptions
    let description: JobDescription
    /// The input files as named now (patterns expanded); a resumed job may read its
    /// checkpoint's list instead (see ``InputSequence``).
    let paths: [String]
    let inputFormat: RecordFormat
    let delimiter: UInt8
    /// Whether the first record names the columns (never for `lines`).
    let header: Bool
    let checkpointPath: String
    let quarantinePath: String?
    /// Whether the output is gzip (asked for, or named `.gz`).
    let compressOutput: Bool
    /// Whether the output is a regular file (or not there yet): only such an output can be
    /// truncated back to a checkpoint.
    let outputIsFile: Bool

    init(_ options: JobOptions) throws {
        self.options = options
        inputFormat = options.inputFormat
        delimiter = options.delimiter ?? inputFormat.defaultDelimiter
        header = inputFormat == .lines ? false : options.header
        if inputFormat != .lines {
            guard delimiter != 34, delimiter != 10, delimiter != 13 else {
                throw PipeRunError(.usage, "the delimiter cannot be a quote, CR or LF")
            }
        }
        if let d = options.outputDelimiter, d == 34 || d == 10 || d == 13 {
            throw PipeRunError(.usage, "the output delimiter cannot be a quote, CR or LF")
        }
        let paths = options.inputPaths
        guard !paths.isEmpty || !options.unmatchedPatterns.isEmpty else { throw PipeRunError(.usage, "no input") }
        if paths.count > 1 && paths.contains("-") {
            throw PipeRunError(.usage, "standard input (-) cannot be one of several inputs")
        }
        if Set(paths).count != paths.count {
            throw PipeRunError(.usage, "an input is named twice: \(paths.first { p in paths.filter { $0 == p }.count > 1 }!)")
        }
        self.paths = paths
        description = JobDescription(options)
        checkpointPath = options.checkpointPath ?? CheckpointStore.defaultPath(forOutput: options.outputPath)
        if case .quarantine(let path) = options.onError { quarantinePath = path } else { quarantinePath = nil }
        compressOutput = options.compressOutput ?? options.outputPath.hasSuffix(".gz")
        outputIsFile = options.outputPath != "-" && fileKind(options.outputPath).map { $0 == S_IFREG } ?? true
        try refuseSharedFiles()
    }

    /// Whether a checkpoint can have been written for this job: an output that is a file, and
    /// inputs that are regular files (or gone since, a rotated log); never a pipe, which is
    /// read afresh every time.
    var mayHaveCheckpoint: Bool {
        !options.restart && outputIsFile
            && paths.allSatisfy { $0 != "-" && fileKind($0).map { $0 == S_IFREG } ?? true }
    }

    /// Refuses a job whose input, output, checkpoint and quarantine file are not four files.
    private func refuseSharedFiles() throws {
        var named: [(String, String)] = [("input", options.inputPath), ("output", options.outputPath),
                                         ("checkpoint", checkpointPath)]
        if let quarantinePath { named.append(("quarantine file", quarantinePath)) }
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
}

/// The type bits (`S_IFREG`, `S_IFCHR`, ...) of the file at `path`, or nil when it does not exist.
func fileKind(_ path: String) -> mode_t? {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
}
