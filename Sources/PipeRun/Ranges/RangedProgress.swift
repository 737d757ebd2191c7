/// The part of a checkpoint that a job run over ranges of its input (`--jobs`) adds: the
/// ranges, fixed when the job started, and where each one is.
///
/// A range holds the records that start in `(start, end]` of one input file's bytes
/// (uncompressed for gzip): for the first range of a file, from the file's first record on. The
/// records of ranges `0..<appended` are in the output, in input order; ``frontier`` says where
/// a run in input order stands after them. The other ranges run side by side, each into a
/// segment file of its own beside the output, from a start found by looking at the bytes near
/// its nominal start (``RecordStart``); the start is proven only when the range before it is
/// appended and ends exactly there, and a range that misspeculated runs again.
package struct RangedProgress: Codable, Sendable {
    package var ranges: [InputRange]
    /// Ranges before this one are in the output.
    package var appended: Int
    package var frontier: Frontier
    /// Input bytes (compressed for gzip) processed so far over all ranges, for `status`.
    package var processedInputBytes: Int64

    /// A run in input order after the appended ranges.
    package struct Frontier: Codable, Sendable {
        /// Offset and line of the next record (in the file of range ``RangedProgress/appended``).
        package var offset: Int64
        package var line: Int64
        package var rowsRead: Int64
        package var rowsWritten: Int64
        package var badRows: Int64
        /// Each transform's state after the appended ranges.
        package var transformStates: [ExactBytes?]
        /// The job ended in the appended ranges (`head:N`).
        package var endedJob: Bool
        /// Input bytes (compressed for gzip) and uncompressed bytes of the appended ranges
        /// (whose runs are forgotten once appended, to keep the checkpoint small).
        package var inputBytes: Int64 = 0
        package var bytes: Int64 = 0
    }
}

/// One range of the job's input.
package struct InputRange: Codable, Sendable {
    /// Which input file (from 0).
    package var file: Int
    /// The range holds the records that start after `start` and at or before `end` (nil: up to
    /// the end of the file); a range with `start` 0 begins at the file's first record.
    package var start: Int64
    package var end: Int64?
    /// For gzip input: the member (a BGZF block) whose uncompressed bytes begin at `start`.
    package var block: BlockStart?
    /// Where the range is; nil until it runs.
    package var run: RangeRun?
    /// Left out: its file vanished or changed before its turn (`--skip-changed-inputs`).
    package var skipped: Bool?

    package struct BlockStart: Codable, Sendable, Equatable {
        package var compressedOffset: Int64
        package var member: Int
    }
}

/// A range that has run, or is running.
package struct RangeRun: Codable, Sendable {
    package enum Mode: String, Codable, Sendable {
        /// Started after every range before it was appended: it writes straight into the output,
        /// from the frontier, with the states of a run in input order.
        case inOrder
        /// Started ahead, from a fresh state, into a segment file.
        case ahead
    }
    package var mode: Mode
    /// Where the reader started, and that place's line in the range's numbering (the true
    /// line for ``Mode/inOrder``; 1 for ``Mode/ahead``, whose lines are fixed up when appended).
    package var readFrom: Int64
    package var readFromLine: Int64
    /// The first record's offset and line (nil until read): an ahead range is right when the
    /// range before it ends exactly here.
    package var firstOffset: Int64?
    package var firstLine: Int64?
    /// The next record's offset and line, in the range's numbering.
    package var offset: Int64
    package var line: Int64
    /// For gzip input: where decompression restarts for ``offset``.
    package var gzip: GzipAccessPoint?
    package var rowsRead: Int64
    package var rowsWritten: Int64
    package var badRows: Int64
    /// Compressed input bytes read so far (for gzip; else ``offset`` - ``readFrom``).
    package var inputBytes: Int64
    package var done: Bool
    /// A transform ended the job in this range (`head:N`).
    package var endedJob: Bool
    /// The range's segment file and quarantine segment (``Mode/ahead``).
    package var segment: OutputState?
    package var quarantineSegment: OutputState?
    /// The transforms' states in this range (from a fresh state for ``Mode/ahead``).
    package var transformStates: [ExactBytes?]
    /// At a bad record that failed the job: the hash of the (up to 64 KiB) bytes before it, so
    /// that an input fixed after the bad record resumes.
    package var beforeHash: String?
}
