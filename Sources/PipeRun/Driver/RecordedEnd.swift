/// Confirming the end of a job that was recorded without waiting for the disk (see
/// ``Checkpoint/completion`` and ``CheckpointCommit``).
enum RecordedEnd {
    /// In the same boot, syncs the outputs; after a restart, first checks that the bytes after
    /// the synced state are the ones written then (by their CRC-32). Then saves the complete
    /// checkpoint, synced like any other, and returns it; nil when the end was lost (the job
    /// resumes from the synced state).
    static func confirm(_ recorded: Checkpoint, afterRestart: Bool, output: OutputFile,
                        store: CheckpointStore) throws -> Checkpoint? {
        guard let end = recorded.completion else { return nil }
        let done = end.checkpoint
        // A quarantine file that is not a regular file (a device) keeps nothing to check.
        var quarantineFD: Int32 = -1
        if let q = done.quarantine, fileKind(q.path) == S_IFREG {
            quarantineFD = open(q.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard quarantineFD >= 0 else {
                throw PipeRunError(.ioError, "cannot open quarantine file \(q.path): \(describe(errno: errno))")
            }
        }
        defer { if quarantineFD >= 0 { close(quarantineFD) } }
        if afterRestart {
            guard try written(fd: output.fd, path: output.path, from: recorded.output.length, to: done.output.length,
                              crc: end.outputCRC32) else { return nil }
            if let q = done.quarantine, quarantineFD >= 0 {
                guard let crc = end.quarantineCRC32,
                      try written(fd: quarantineFD, path: q.path, from: recorded.quarantine?.length ?? 0, to: q.length, crc: crc)
                else { return nil }
            }
        }
        do {
            try output.sync()
            if quarantineFD >= 0, let err = syncData(quarantineFD) {
                throw PipeRunError(.ioError, "cannot sync quarantine file \(done.quarantine!.path): \(describe(errno: err))")
            }
        } catch {
            // The disk lost part of the end: a later sync would not say so again, so the job
            // forgets its end and resumes from the synced state next time.
            var synced = recorded
            synced.completion = nil
            try? store.save(synced)
            throw error
        }
        try store.save(done)
        return done
    }

    /// Whether the file at `fd` is `end` bytes long and its bytes from `start` have CRC-32 `crc`.
    private static func written(fd: Int32, path: String, from start: Int64, to end: Int64, crc: UInt32) throws -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, Int64(st.st_size) == end, start <= end else { return false }
        return try crc32(fd: fd, path: path, from: start, to: end) == crc
    }

    /// The CRC-32 of the bytes of the file at `fd` from `start` to `end` (nil when it is shorter).
    static func crc32(fd: Int32, path: String, from start: Int64, to end: Int64) throws -> UInt32? {
        var sum: UInt32 = 0
        var offset = start
        while offset < end {
            let chunk = try preadAll(fd: fd, path: path, offset: offset, count: Int(min(end - offset, 1 << 20)))
            guard !chunk.isEmpty else { return nil }
            sum = chunk.withUnsafeBytes { CRC32.update(sum, $0) }
            offset += Int64(chunk.count)
        }
        return sum
    }
}
