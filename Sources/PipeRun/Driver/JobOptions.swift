/// What to do with a record that cannot be parsed or that a transform rejects.
public enum ErrorPolicy: Sendable, Equatable {
    /// Stop the job with exit status 65; the checkpoint points at the bad record.
    case fail
    /// Count the record and go on.
    case skip
    /// Write the record, with its line, offset and reason, to a side file and go on.
    case quarantine(path: String)

    /// Parses `fail`, `skip` or `quarantine=PATH`.
    public init(parsing text: String) throws {
        switch text {
        case "fail": self = .fail
        case "skip": self = .skip
        default:
            guard text.hasPrefix("quarantine="), text.count > "quarantine=".count else {
                throw PipeRunError(.usage, "--on-error takes fail, skip or quarantine=PATH, not '\(text)'")
            }
            self = .quarantine(path: String(text.dropFirst("quarantine=".count)))
        }
    }
}

/// Everything that describes one job run.
public struct JobOptions: Sendable {
    /// The input files, read one after the other as one input; `-` (alone) is standard input,
    /// which is not resumable.
    public var inputPaths: [String]
    /// The inputs as named on the command line (patterns included), when ``inputPaths`` came
    /// from expanding them: a resumed job then reads the files listed in its checkpoint, so that
    /// files which appeared since (a new rotated log) do not change it.
    public var inputPatterns: [String]?
    /// Patterns of ``inputPatterns`` that match no file: an error, unless the job is already
    /// complete (its input may be gone since: rotated logs).
    public var unmatchedPatterns: [String] = []
    /// The first input file.
    public var inputPath: String { inputPaths.first ?? "-" }
    /// Leave out an input that vanished or changed before its turn, instead of failing.
    public var skipChangedInputs = false
    /// The output file; `-` is standard output (not resumable).
    public var outputPath: String
    /// The checkpoint file; by default `OUTPUT.checkpoint`.
    public var checkpointPath: String?
    public var inputFormat: RecordFormat = .csv
    /// The field delimiter (one byte); by default the format's.
    public var delimiter: UInt8?
    /// Whether the first record names the columns (never for `lines`).
    public var header = true
    /// Accept records whose field count differs from the header's.
    public var flexible = false
    /// The output format; by default the input's (`csv` when `lines` input becomes several columns).
    public var outputFormat: RecordFormat?
    public var outputDelimiter: UInt8?
    /// Write gzip; by default when the output's name ends in `.gz`.
    public var compressOutput: Bool?
    /// The gzip level, 1 (fastest) to 9 (smallest).
    public var compressionLevel = 1
    /// Transform specs, applied in order.
    public var transforms: [String] = []
    /// Seconds between checkpoints; 0 checkpoints only when the job stops.
    public var checkpointInterval: Double = 5
    /// Wait at the end until the output is on the disk (as at every checkpoint). Without it,
    /// the job ends once the output is written, and a rerun after a restart of the machine
    /// writes again what followed the last checkpoint.
    public var syncAtEnd = false
    /// Discard any checkpoint and start over.
    public var restart = false
    /// Seconds the current row may take to finish after a stop signal.
    public var graceSeconds: Double = 25
    /// Stop (resumably) after this many seconds.
    public var maxRuntime: Double?
    public var onError: ErrorPolicy = .fail
    /// The longest record accepted, in bytes.
    public var maxRecordBytes = 64 << 20
    /// The most fields a record may have (more make it a bad record).
    public var maxFields = RecordReader.defaultMaxFields
    /// Uncompressed bytes between remembered gzip access points (tests make it huge to see
    /// how a file without access points resumes).
    public var gzipAccessPointSpacing: Int64 = 512 << 10
    /// How progress is shown on standard error.
    public var progress: ProgressMode = .none
    /// Seconds between progress lines when not on a terminal.
    public var progressEvery: Double = 10
    /// Where to write one JSON line per event (`-` for standard output), if anywhere.
    public var eventsPath: String?
    /// How many ranges of the input run at once; nil: the cores available (``availableCores()``).
    public var jobs: Int?
    /// Nominal bytes per range of a plain or BGZF file, when the job starts (see ``RangePlanner``).
    public var rangeSize: Int64 = 64 << 20
    /// Install SIGTERM/SIGINT/SIGHUP handlers (the command-line tool does).
    public var handleSignals = true

    public init(inputPath: String, outputPath: String) {
        self.init(inputPaths: [inputPath], outputPath: outputPath)
    }

    public init(inputPaths: [String], outputPath: String) {
        self.inputPaths = inputPaths
        self.outputPath = outputPath
    }
}

/// How a job run ended without an error.
public enum JobOutcome: Sendable, Equatable {
    /// The input was processed to the end.
    case completed
    /// The checkpoint says the job was already complete; nothing was touched.
    case alreadyComplete
    /// A signal or `--max-runtime` stopped the job; running it again resumes it.
    case interrupted
}
