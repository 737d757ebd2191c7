/// Everything a resumed job needs, stored as human-readable JSON beside the output.
///
/// The checkpoint never describes output that is not on disk: the output is flushed and synced
/// before the checkpoint that mentions its length is written. The one exception is the end of
/// a job (unless `--sync`): the job does not wait for the disk, and records its completion in
/// ``completion`` beside the last synced state. While the machine has not restarted, its
/// output is whole (the kernel holds what is not yet on the disk), so the job reads as
/// complete; after a restart, it resumes from the synced state and writes the rest again.
package struct Checkpoint: Codable, Sendable {
    package static let formatName = "pipe-run checkpoint"
    /// Version 2 saves a transform state that is not UTF-8 as `{"base64": ...}`; version 1 held
    /// only strings, so this version reads both.
    /// Version 3 is a job run over ranges (``ranges``); its single-cursor fields then only
    /// sum up the job. Jobs that run in one piece keep writing version 2, which releases
    /// before ranges read.
    package static let currentVersion = 2
    package static let rangedVersion = 3
    package static let readableVersions = 1...3

    package enum Status: String, Codable, Sendable {
        case running, interrupted, complete, failed
    }

    /// Identifies the file (`pipe-run checkpoint`) and its format version.
    package var format = Checkpoint.formatName
    package var version = Checkpoint.currentVersion
    /// The pipe-run that wrote the checkpoint (``pipeRunVersion``); absent from checkpoints
    /// written before 0.11.0.
    package var writerVersion: String?
    package var status: Status
    /// Why the job stopped, when it did not complete.
    package var reason: String?
    /// The process that wrote this checkpoint.
    package var pid: Int32
    package var job: JobDescription
    package var jobFingerprint: String
    /// The input file the cursor is in.
    package var input: InputIdentity
    /// Every input file of the job, in order, as they were when it started.
    package var inputs: [InputIdentity]?
    /// The input's column names (from its header, or numbered).
    package var inputColumns: [String]
    package var cursor: Cursor
    /// For gzip input: where decompression restarts (at or before the cursor).
    package var gzip: GzipAccessPoint?
    package var output: OutputState
    package var quarantine: OutputState?
    /// Each transform's saved state, in chain order (nil for stateless transforms): a string when
    /// the state is UTF-8 (JSON, say), else `{"base64": ...}`.
    package var transformStates: [ExactBytes?]
    package var createdAt: String
    package var updatedAt: String
    /// Runs of the job so far, including this one.
    package var runs: Int
    /// Runs that ended with an interruption.
    package var interruptions: Int
    /// Seconds the job has run, over all its runs.
    package var elapsedSeconds: Double?
    /// The last checkpoints' times and cursors, for the rate and ETA `pipe-run status` shows.
    package var history: [ProgressSample]?
    /// The job's end, when its output was not synced then (the other fields are the last
    /// synced state). ``CheckpointStore/load()`` returns the complete job while the machine
    /// has not restarted, else the synced state with this left set, to say why it resumes.
    package var completion: Completion?
    /// A job run over ranges of its input (``RangedProgress``); nil for a job run in one piece.
    package var ranges: RangedProgress?

    /// The end of a job, recorded without waiting for the disk.
    package struct Completion: Codable, Sendable {
        /// The boot it happened in (Linux's `/proc/sys/kernel/random/boot_id`).
        package var bootID: String
        /// CRC-32 of the output's bytes after the synced state's length (and of the
        /// quarantine file's): after a restart, matching bytes prove the end reached the disk.
        package var outputCRC32: UInt32
        package var quarantineCRC32: UInt32?
        /// The complete job's checkpoint (its transform states left out: nothing resumes from
        /// the end). Boxed, since a checkpoint cannot hold a checkpoint directly.
        private var end: Box
        package var checkpoint: Checkpoint { end.checkpoint }

        private enum CodingKeys: String, CodingKey {
            case bootID, outputCRC32, quarantineCRC32, end = "checkpoint"
        }

        package init(bootID: String, outputCRC32: UInt32, quarantineCRC32: UInt32?, checkpoint: Checkpoint) {
            self.bootID = bootID
            self.outputCRC32 = outputCRC32
            self.quarantineCRC32 = quarantineCRC32
            var complete = checkpoint
            complete.transformStates = complete.transformStates.map { _ in nil }
            complete.completion = nil
            complete.writerVersion = pipeRunVersion
            end = Box(complete)
        }

        private final class Box: Codable, Sendable {
            let checkpoint: Checkpoint
            init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }
            init(from decoder: any Decoder) throws { checkpoint = try Checkpoint(from: decoder) }
            func encode(to encoder: any Encoder) throws { try checkpoint.encode(to: encoder) }
        }
    }

    /// The last synced state `self` with `complete` (a complete job's checkpoint) recorded as
    /// its completion in boot `bootID`; the CRCs are of the bytes written after `self`.
    package func recording(completion complete: Checkpoint, bootID: String, outputCRC32: UInt32,
                           quarantineCRC32: UInt32?) -> Checkpoint {
        var cp = self
        cp.completion = Completion(bootID: bootID, outputCRC32: outputCRC32, quarantineCRC32: quarantineCRC32,
                                   checkpoint: complete)
        return cp
    }

    /// The checkpoint as it stands in boot `bootID`: the complete job if its completion
    /// happened in that boot; else unchanged (``completion``, if set, was lost with a restart).
    package func resolved(bootID: String?) -> Checkpoint {
        guard let c = completion, c.bootID == bootID else { return self }
        return c.checkpoint
    }
}

/// Where a job was at one checkpoint.
package struct ProgressSample: Codable, Sendable {
    /// Seconds since 1970.
    package var time: Double
    /// Input bytes before the cursor then, over all input files (compressed bytes for gzip).
    package var inputOffset: Int64
    package var rowsRead: Int64
}

/// What the job does: two runs with the same description write the same output.
package struct JobDescription: Codable, Equatable, Sendable {
    package var inputFormat: RecordFormat
    package var delimiter: String
    package var header: Bool
    package var flexible: Bool
    /// The output format asked for; nil means "as the input" (CSV when `lines` input becomes
    /// several columns).
    package var outputFormat: RecordFormat?
    package var outputDelimiter: String?
    package var transforms: [String]
    package var maxRecordBytes: Int
    /// `--max-fields`, when not the default (absent from checkpoints of earlier versions).
    package var maxFields: Int?
    /// "gzip LEVEL" when the output is compressed.
    package var outputCompression: String?
    /// The inputs as named on the command line, when they were patterns to expand.
    package var inputPatterns: [String]?

    /// The description of the job `options` ask for.
    package init(_ options: JobOptions) {
        inputFormat = options.inputFormat
        delimiter = String(decoding: [options.delimiter ?? options.inputFormat.defaultDelimiter], as: UTF8.self)
        header = options.inputFormat == .lines ? false : options.header
        flexible = options.flexible
        outputFormat = options.outputFormat
        outputDelimiter = options.outputDelimiter.map { String(decoding: [$0], as: UTF8.self) }
        transforms = options.transforms
        maxRecordBytes = options.maxRecordBytes
        maxFields = options.maxFields == RecordReader.defaultMaxFields ? nil : options.maxFields
        let compress = options.compressOutput ?? options.outputPath.hasSuffix(".gz")
        outputCompression = compress ? "gzip \(options.compressionLevel)" : nil
        inputPatterns = options.inputPatterns
    }

    /// The differences from `other`, one phrase each.
    package func differences(from other: JobDescription) -> [String] {
        var out: [String] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { out.append("\(name) was \(b), now \(a)") }
        }
        check("input format", inputFormat.rawValue, other.inputFormat.rawValue)
        check("delimiter", delimiter.debugDescription, other.delimiter.debugDescription)
        check("header", header, other.header)
        check("--flexible", flexible, other.flexible)
        check("output format", outputFormat?.rawValue ?? "default", other.outputFormat?.rawValue ?? "default")
        check("output delimiter", outputDelimiter?.debugDescription ?? "default", other.outputDelimiter?.debugDescription ?? "default")
        check("transforms", transforms.map { "'\($0)'" }.joined(separator: " "),
              other.transforms.map { "'\($0)'" }.joined(separator: " "))
        check("--max-record-size", maxRecordBytes, other.maxRecordBytes)
        check("--max-fields", maxFields ?? RecordReader.defaultMaxFields, other.maxFields ?? RecordReader.defaultMaxFields)
        check("output compression", outputCompression ?? "none", other.outputCompression ?? "none")
        check("inputs", (inputPatterns ?? []).joined(separator: " "), (other.inputPatterns ?? []).joined(separator: " "))
        return out
    }

    package var fingerprint: String {
        let text = [inputFormat.rawValue, delimiter, String(header), String(flexible), outputFormat?.rawValue ?? "",
                    outputDelimiter ?? "", String(maxRecordBytes), outputCompression ?? ""]
            + (maxFields.map { ["max-fields=\($0)"] } ?? []) + transforms
        return ContentHash.hex(Array(text.joined(separator: "\u{0}").utf8))
    }
}

/// Who the input file is, to detect that it was replaced, truncated or rewritten.
package struct InputIdentity: Codable, Equatable, Sendable {
    package var path: String
    package var size: Int64
    package var modifiedNanoseconds: Int64
    package var device: UInt64
    package var inode: UInt64
    /// Hash of the first bytes of the file (up to 64 KiB).
    package var headHash: String
    package var headLength: Int
}

/// Where the job is in its input.
package struct Cursor: Codable, Sendable {
    /// Byte offset of the next record to read.
    package var offset: Int64
    /// 1-based line number at ``offset``.
    package var line: Int64
    /// Offset in the input file itself up to which the input was read: ``offset`` for plain
    /// input, the access point's compressed offset for gzip.
    package var inputOffset: Int64
    /// Hash of the file's bytes just before ``inputOffset`` (up to 64 KiB).
    package var beforeHash: String
    package var beforeLength: Int
    package var rowsRead: Int64
    package var rowsWritten: Int64
    package var badRows: Int64
    /// Which input file (from 0) the cursor is in.
    package var file: Int?
    /// Uncompressed bytes of the input files before that one.
    package var bytesBefore: Int64?
}

/// How much of an output file the checkpoint vouches for.
package struct OutputState: Codable, Sendable {
    package var path: String
    package var length: Int64
    /// Hash of the last bytes before ``length`` (up to 4 KiB).
    package var tailHash: String
    package var tailLength: Int
}

extension Checkpoint {
    /// Refuses a checkpoint whose numbers cannot have been written by pipe-run (a damaged or
    /// hand-edited file), before any of them is used.
    package func validate(path: String, transforms: Int) throws {
        let limit: Int64 = 1 << 60
        let problems: [(Bool, String)] = [
            ((cursor.file ?? 0) >= 0 && (cursor.file ?? 0) < max(inputs?.count ?? 1, 1), "cursor.file is out of range"),
            (transformStates.count == transforms, "it holds \(transformStates.count) transform states for \(transforms) transforms"),
            ((0...65536).contains(input.headLength) && Int64(input.headLength) <= max(input.size, 0), "input.headLength is out of range"),
            (input.size >= 0 && input.size < limit, "input.size is out of range"),
            (cursor.inputOffset >= 0 && cursor.inputOffset <= input.size, "cursor.inputOffset is out of range"),
            (gzip != nil || cursor.inputOffset == cursor.offset, "cursor.inputOffset does not match cursor.offset"),
            (cursor.offset >= 0 && cursor.offset < limit, "cursor.offset is out of range"),
            (gzip.map { $0.uncompressedOffset <= cursor.offset && $0.resumeOffset == cursor.inputOffset } ?? true,
             "the gzip access point does not match the cursor"),
            (Int64(cursor.beforeLength) == min(cursor.inputOffset, 65536), "cursor.beforeLength does not match cursor.inputOffset"),
            (cursor.line >= 1 && cursor.line <= cursor.offset + 1, "cursor.line is out of range"),
            ((0..<limit).contains(cursor.rowsRead) && (0..<limit).contains(cursor.rowsWritten)
                && (0..<limit).contains(cursor.badRows), "the row counts are out of range"),
            (output.length >= 0 && output.length < limit, "output.length is out of range"),
            (Int64(output.tailLength) == min(output.length, 4096), "output.tailLength does not match output.length"),
            (quarantine.map { $0.length >= 0 && $0.length < limit && Int64($0.tailLength) == min($0.length, 4096) } ?? true,
             "quarantine is out of range"),
            ((0..<(1 << 40)).contains(runs) && (0..<(1 << 40)).contains(interruptions), "runs or interruptions is out of range"),
        ]
        if let problem = problems.first(where: { !$0.0 }) {
            throw PipeRunError(.dataError, "checkpoint \(path) is damaged (\(problem.1)); add --restart to start over")
        }
    }
}
