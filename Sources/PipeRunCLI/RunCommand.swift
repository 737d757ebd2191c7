import ArgumentParser
import PipeRun

extension RecordFormat: ExpressibleByArgument {}
extension ProgressMode: ExpressibleByArgument {}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a job, or resume it from its checkpoint.",
        discussion: "Transforms:\n" + PipeRunCLI.transforms.descriptors.map(\.helpLine).joined(separator: "\n"))

    @Argument(help: "The input files, read in order as one input; quoted patterns such as 'logs/app-*.log.gz' are expanded and sorted naturally (app-9 before app-10). `-` is standard input, which cannot be resumed.")
    var inputs: [String]

    @Option(name: .shortAndLong, help: "The output file (`-` for standard output, which cannot be resumed).")
    var output: String

    @Option(name: [.customShort("t"), .customLong("transform")],
            help: "A transform, e.g. 'filter:status=refunded'; repeat to chain. `pipe-run transforms` lists them.")
    var transforms: [String] = []

    @Option(help: "Input format: csv, tsv or lines.")
    var format: RecordFormat = .csv

    @Option(help: "Field delimiter (one character; \\t for tab).")
    var delimiter: String?

    @Flag(help: "The first record is data, not column names; columns are numbered from 1.")
    var noHeader = false

    @Flag(help: "Accept records whose field count differs from the header's.")
    var flexible = false

    @Option(help: "Output format: csv, tsv or lines (default: the input's).")
    var outputFormat: RecordFormat?

    @Option(help: "Output field delimiter (default: the input's).")
    var outputDelimiter: String?

    @Option(help: "Compress the output: gzip or none (default: gzip when OUTPUT ends in .gz).")
    var compress: String?

    @Option(help: "gzip level for the output, 1 (fastest, the default) to 9 (smallest).")
    var compressLevel: Int = 1

    @Option(help: "The checkpoint file (default: OUTPUT.checkpoint).")
    var checkpoint: String?

    @Option(help: "Seconds between checkpoints; 0 checkpoints only when the job stops.")
    var checkpointEvery: Double = 5

    @Flag(help: "At the end, wait until the output is on the disk, not only written (as at every checkpoint).")
    var sync = false

    @Flag(help: "Discard the checkpoint and start the job over.")
    var restart = false

    @Option(help: "Seconds the current row may take to finish after SIGTERM/SIGINT/SIGHUP before exiting anyway.")
    var grace: Double = 25

    @Option(help: "Checkpoint and exit with status 75 after this many seconds.")
    var maxRuntime: Double?

    @Option(help: "Bad records: fail, skip, or quarantine=PATH.")
    var onError: String = "fail"

    @Option(help: "The longest record accepted, in bytes.")
    var maxRecordSize: Int = 64 << 20

    @Option(help: "The most fields a record may have; a record with more is a bad record.")
    var maxFields: Int = RecordReader.defaultMaxFields

    @Flag(help: "Leave out an input file that vanished or changed before its turn, instead of failing.")
    var skipChangedInputs = false

    @Option(help: "Progress on standard error: auto (a live line on a terminal, else a log line), bar, log or none.")
    var progress: ProgressMode = .auto

    @Option(help: "Seconds between progress log lines (when not on a terminal).")
    var progressEvery: Double = 10

    @Option(help: "Write one JSON line per event (started, resumed, checkpoint, interrupted, bad-row, completed, failed) to PATH, or - for standard output.")
    var events: String?

    @Option(help: ArgumentHelp("Uncompressed bytes between gzip access points (for tests).", visibility: .private))
    var gzipAccessPointSpacing: Int64 = 512 << 10

    @Option(help: "How many ranges of the input run at once (default: the cores this process may use, as CPU affinity and a cgroup CPU quota allow). The ranges are fixed when the job starts (whole files, about 64 MiB of a plain file, BGZF blocks), so a resumed job may use another number; 1 runs them one after the other.")
    var jobs: Int?

    @Option(help: ArgumentHelp("Nominal bytes per range when a job starts (for tests).", visibility: .private))
    var rangeSize: Int64 = 64 << 20

    func run() throws {
        let files: (files: [String], unmatched: [String])
        do {
            files = try InputList.expandAllowingMisses(inputs)
        } catch let error as PipeRunError {
            printNotice("error: \(error.message)")
            throw ExitCode(error.exitStatus)
        }
        var options = JobOptions(inputPaths: files.files, outputPath: output)
        options.inputPatterns = inputs
        options.unmatchedPatterns = files.unmatched
        options.skipChangedInputs = skipChangedInputs
        options.checkpointPath = checkpoint
        options.inputFormat = format
        options.delimiter = try delimiter.map { try parseDelimiter($0, "--delimiter") }
        options.header = !noHeader
        options.flexible = flexible
        options.outputFormat = outputFormat
        options.outputDelimiter = try outputDelimiter.map { try parseDelimiter($0, "--output-delimiter") }
        options.transforms = transforms
        options.checkpointInterval = checkpointEvery
        options.restart = restart
        options.syncAtEnd = sync
        options.graceSeconds = grace
        options.maxRuntime = maxRuntime
        options.maxRecordBytes = maxRecordSize
        options.maxFields = maxFields
        options.compressionLevel = compressLevel
        options.gzipAccessPointSpacing = gzipAccessPointSpacing
        options.progress = progress
        options.progressEvery = progressEvery
        options.eventsPath = events
        if let jobs, jobs < 1 { throw ValidationError("--jobs takes a number of at least 1") }
        guard rangeSize >= 1 else { throw ValidationError("--range-size takes a number of bytes of at least 1") }
        options.jobs = jobs
        options.rangeSize = rangeSize
        switch compress {
        case nil: break
        case "gzip": options.compressOutput = true
        case "none": options.compressOutput = false
        default: throw ValidationError("--compress takes gzip or none")
        }
        guard (1...9).contains(compressLevel) else { throw ValidationError("--compress-level takes 1 to 9") }
        try runJob {
            options.onError = try ErrorPolicy(parsing: onError)
            guard checkpointEvery >= 0, grace > 0, (maxRuntime ?? 1) >= 0, progressEvery > 0,
                  !checkpointEvery.isNaN, !grace.isNaN, !(maxRuntime ?? 1).isNaN else {
                throw PipeRunError(.usage, "--checkpoint-every, --grace, --max-runtime and --progress-every must be positive numbers")
            }
            guard maxRecordSize >= 1024, maxRecordSize <= RecordReader.largestRecordLimit else {
                throw PipeRunError(.usage, "--max-record-size must be between 1024 bytes and 1 GiB")
            }
            guard maxFields >= 1, maxFields <= 1 << 30 else {
                throw PipeRunError(.usage, "--max-fields must be between 1 and 1073741824")
            }
            return try JobRunner(options: options, registry: PipeRunCLI.transforms, notice: printNotice).run()
        }
    }
}

struct Transforms: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the available transforms.")

    func run() throws {
        StopSignals.restoreDefaultActions()
        let registry = PipeRunCLI.transforms
        let width = registry.descriptors.map(\.usage.count).max() ?? 0
        for d in registry.descriptors {
            print(d.usage.padding(toLength: width + 2) + d.summary)
        }
    }
}

/// Runs `body` and turns its outcome into the documented exit status.
func runJob(_ body: () throws -> JobOutcome) throws {
    do {
        switch try body() {
        case .completed, .alreadyComplete: return
        case .interrupted: throw ExitCode(ExitStatus.interrupted)
        }
    } catch is OutputClosed {
        // The reader of standard output has gone (`pipe-run ... | head`): stop quietly.
        return
    } catch let error as PipeRunError {
        printNotice("error: \(error.message)")
        throw ExitCode(error.exitStatus)
    }
}

func parseDelimiter(_ text: String, _ option: String) throws -> UInt8 {
    switch text {
    case "\\t", "tab": return 9
    default:
        let bytes = Array(text.utf8)
        guard bytes.count == 1 else {
            throw ValidationError("\(option) must be a single byte, such as ',' ';' '|' or '\\t'")
        }
        return bytes[0]
    }
}

func printNotice(_ text: String) {
    var line = Array("pipe-run: \(text)\n".utf8)
    line.withUnsafeMutableBytes { buffer in
        var done = 0
        while done < buffer.count {
            let n = write(2, buffer.baseAddress! + done, buffer.count - done)
            if n <= 0 { break }
            done += n
        }
    }
}

extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

extension TransformDescriptor {
    /// `  usage  summary`, the summary on a line of its own when the usage is long.
    var helpLine: String {
        let column = 20
        if usage.count + 4 <= column { return "  " + usage.padding(toLength: column - 2) + summary }
        return "  " + usage + "\n" + String(repeating: " ", count: column) + summary
    }
}
