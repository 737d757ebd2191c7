/// The commit protocol: how the output and the checkpoint that vouches for it are made
/// durable, in the one order that keeps output exactly-once through any crash.
///
/// A commit, in order:
/// 1. The transforms emit what they hold back (``RowTransform/willCheckpoint(emit:)``), so that
///    their saved states and the output line up.
/// 2. The output segment is sealed: the writers' buffers are written out, the gzip member is
///    finished (a gzip output is then a valid file at the checkpoint's length), and the
///    write-behind thread has put everything in the file.
/// 3. The outputs are synced (`fdatasync`): the bytes the checkpoint will vouch for are on the
///    disk before any checkpoint mentions them.
/// 4. The checkpoint is written to `PATH.tmp`, synced, renamed over `PATH`, and the directory
///    is synced (``CheckpointStore/save(_:durably:)``): a crash at any instant leaves the old
///    checkpoint or the new one, and either describes output that is on the disk. A resumed
///    run truncates the output to the length it records.
///
/// The end of a job is the one exception to step 3 (unless `--sync`): the outputs are not
/// synced, and the file keeps the last synced checkpoint with the end recorded beside it
/// (``Checkpoint/completion``): the boot id and a CRC-32 of what followed it, so that a later
/// run confirms the end or, after a restart that lost part of it, writes that part again.
final class CheckpointCommit {
    let store: CheckpointStore
    /// The checkpoint as last committed (the one a resumed run read, before the first commit).
    private(set) var checkpoint: Checkpoint
    /// The last checkpoint saved with its outputs synced.
    private var lastSynced: Checkpoint?
    /// This boot of the machine, when the end of the job will not wait for the disk; the
    /// outputs then keep a CRC-32 of what follows the last synced checkpoint.
    private let endBootID: String?
    private let inputs: InputSequence
    private let segment: OutputSegment
    private let loop: RowLoop
    /// Seconds of earlier runs, and when this one started.
    private let earlierSeconds: Double
    private let runStarted: UInt64

    init(store: CheckpointStore, checkpoint: Checkpoint, endBootID: String?, inputs: InputSequence,
         segment: OutputSegment, loop: RowLoop, runStarted: UInt64) {
        self.store = store
        self.checkpoint = checkpoint
        self.endBootID = endBootID
        self.inputs = inputs
        self.segment = segment
        self.loop = loop
        earlierSeconds = checkpoint.elapsedSeconds ?? 0
        self.runStarted = runStarted
        if endBootID != nil { segment.keepChecksums() }
    }

    /// Seconds this job has run, over all its runs.
    var totalSeconds: Double {
        earlierSeconds + Double(monotonicNanoseconds() - runStarted) / 1e9
    }

    /// Takes the current input file as it is now: a failed job resumes on a fixed file.
    func adoptCurrentInput(_ identity: InputIdentity) {
        if inputs.index < inputs.identities.count { inputs.identities[inputs.index] = identity }
        checkpoint.input = identity
        checkpoint.inputs = inputs.identities
    }

    /// Where the last commit left the cursor.
    var cursor: Cursor { checkpoint.cursor }

    /// Commits the job's state at the reader's cursor (or at `position`: a bad record that
    /// failed the job) with `status`; returns true when a transform ended the job in step 1.
    @discardableResult
    func commit(_ status: Checkpoint.Status, reason: String? = nil,
                at position: (offset: Int64, line: Int64)? = nil) throws -> Bool {
        let endRequested = try loop.willCheckpoint()
        let lengths = try segment.seal()
        let unsynced = status == .complete && endBootID != nil && lastSynced != nil
        if !unsynced { try segment.sync() }
        var cp = checkpoint
        guard try place(&cp, at: position) else { return endRequested }
        cp.output = try outputState(segment.file, length: lengths.output)
        if let quarantineFile = segment.quarantineFile, let length = lengths.quarantine {
            cp.quarantine = try outputState(quarantineFile, length: length)
        }
        cp.transformStates = try loop.transforms.map { t in try t.saveState().map(ExactBytes.init) }
        if let numbered = loop.numberedColumns { cp.inputColumns = numbered }
        cp.status = status
        cp.reason = reason
        cp.elapsedSeconds = totalSeconds
        cp.pid = getpid()
        cp.updatedAt = isoTimestamp()
        if status == .interrupted { cp.interruptions += 1 }
        if unsynced, let endBootID, let lastSynced {
            // A disk error the flusher saw would be reported to no one else.
            try segment.file.stopFlushing()
            try segment.quarantineFile?.stopFlushing()
            let recorded = lastSynced.recording(completion: cp, bootID: endBootID, outputCRC32: try segment.file.checksum(),
                                                quarantineCRC32: try segment.quarantineFile?.checksum())
            try store.save(recorded, durably: false)
        } else {
            // What follows this checkpoint is checksummed from here.
            _ = try segment.file.checksum()
            _ = try segment.quarantineFile?.checksum()
            try store.save(cp)
            lastSynced = cp
        }
        checkpoint = cp
        return endRequested
    }

    /// Sets the cursor (and for gzip the access point it resumes from) and the progress
    /// history; false when a gzip input has no access point yet at or before the cursor.
    private func place(_ cp: inout Checkpoint, at position: (offset: Int64, line: Int64)?) throws -> Bool {
        let reader = loop.reader
        let offset = position?.offset ?? reader.cursor
        var inputOffset = offset
        cp.gzip = nil
        if let gzip = inputs.gzip {
            guard let point = gzip.accessPoint(atOrBefore: offset) else { return false }
            cp.gzip = point
            inputOffset = point.resumeOffset
        }
        if inputs.index < inputs.identities.count { cp.input = inputs.identities[inputs.index] }
        let before = try inputs.bytes(before: inputOffset)
        cp.cursor = Cursor(offset: offset, line: position?.line ?? reader.cursorLine, inputOffset: inputOffset,
                           beforeHash: ContentHash.hex(before), beforeLength: before.count,
                           rowsRead: loop.rowsRead, rowsWritten: loop.rowsWritten, badRows: loop.badRows,
                           file: inputs.index, bytesBefore: inputs.bytesOfEarlierFiles)
        var history = cp.history ?? []
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        history.append(ProgressSample(time: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9,
                                      inputOffset: inputs.sizeOfEarlierFiles + inputOffset, rowsRead: loop.rowsRead))
        if history.count > 16 { history.removeFirst(history.count - 16) }
        cp.history = history
        return true
    }

    private func outputState(_ file: OutputFile, length: Int64) throws -> OutputState {
        let tail = try preadAll(fd: file.fd, path: file.path, offset: max(0, length - 4096), count: Int(min(length, 4096)))
        return OutputState(path: file.path, length: length, tailHash: ContentHash.hex(tail), tailLength: tail.count)
    }

    /// The first checkpoint of a job that starts now.
    static func fresh(job: Job, inputs: InputSequence, outputPath: String, columns: [String],
                      transforms: Int) throws -> Checkpoint {
        try inputs.recordIdentities()
        let identity = inputs.identities[0]
        let now = isoTimestamp()
        return Checkpoint(
            status: .running, reason: nil, pid: getpid(), job: job.description, jobFingerprint: job.description.fingerprint,
            input: identity, inputs: inputs.identities, inputColumns: columns,
            cursor: Cursor(offset: 0, line: 1, inputOffset: 0, beforeHash: ContentHash.hex([]), beforeLength: 0, rowsRead: 0,
                           rowsWritten: 0, badRows: 0, file: 0),
            gzip: nil,
            output: OutputState(path: outputPath, length: 0, tailHash: ContentHash.hex([]), tailLength: 0),
            quarantine: nil, transformStates: Array(repeating: nil, count: transforms), createdAt: now, updatedAt: now,
            runs: 1, interruptions: 0)
    }
}
