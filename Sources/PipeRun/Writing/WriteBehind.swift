import CScan

/// Writes a file's bytes on a thread of its own, a few blocks behind the caller, so that the
/// kernel's copy into the page cache overlaps with parsing and formatting.
///
/// ``append(_:)`` copies into a block and queues full blocks; ``drain()`` waits until every
/// byte appended has been written. The first write error is kept: every later call returns it,
/// and the blocks still queued are dropped.
///
/// A second thread, the flusher, has the kernel write what is in the page cache to the disk,
/// a few MiB at a time, from the start: the disk is kept busy, so a checkpoint's `fdatasync`
/// finds little left to do. The writing thread never waits for the disk unless the bytes
/// written but not yet on the disk exceed ``maxUnflushed``: then it waits for the flusher, so
/// that the sync at a stop signal has a bounded amount to write (1 GiB: 2 s on a 500 MB/s
/// disk, 10 s on a 100 MB/s one, within the default grace of 25 s). A job whose output is
/// smaller than that is not slowed down by the disk at all.
final class WriteBehind: @unchecked Sendable {
    /// Bytes written to the page cache but not yet known to be on the disk, at most.
    static let maxUnflushed: Int64 = 1 << 30
    /// What the flusher hands to the kernel at a time.
    static let flushChunk: Int64 = 8 << 20
    private let fd: Int32
    private let flushFD: Int32
    private let blockSize: Int
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    // Shared with the writing thread, under `mutex`.
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var queue: [(block: UnsafeMutableRawBufferPointer, count: Int)] = []
    private var writing = false
    private var failure: Int32?
    private var stopping = false
    private var thread: pthread_t?
    /// Shared with the flusher, under `mutex`: the end of the bytes written to the page cache,
    /// the end of those the flusher handed to the kernel, and the end of those known to be on
    /// the disk (all as file offsets).
    private var writtenEnd: Int64 = 0
    private var requestedEnd: Int64 = 0
    private var flushedEnd: Int64 = 0
    /// Whether the flusher is between taking a range and recording it.
    private var flushing = false
    /// Set when the file system cannot do it (the writer then never waits for it).
    private var flushUnsupported = false
    private var flusher: pthread_t?
    /// Under `mutex`: whether to keep a CRC-32 of the bytes written, and that CRC since the
    /// last ``takeChecksum()`` (or ``moved(to:)``).
    private var checksumming = false
    private var checksum: UInt32 = 0
    private var started = false
    // The caller's own.
    private var current: UnsafeMutableRawBufferPointer?
    private var used = 0

    /// `flushFD` (or -1 for no flusher) is a descriptor of its own for the same file, which
    /// the writer closes: a write error the flusher's waits see would otherwise count as
    /// reported for `fd`, and the next `fdatasync` of `fd` would not report it.
    init(fd: Int32, flushFD: Int32 = -1, blockSize: Int = 1 << 20, depth: Int = 4) {
        self.fd = fd
        self.flushFD = flushFD
        flushUnsupported = flushFD < 0
        self.blockSize = blockSize
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<depth { free.append(.allocate(byteCount: blockSize, alignment: 64)) }
    }

    deinit {
        stop()
        if flushFD >= 0 { close(flushFD) }
        for block in free { block.deallocate() }
        for item in queue { item.block.deallocate() }
        current?.deallocate()
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Queues a copy of `bytes`; returns the error of an earlier write, if any.
    func append(_ bytes: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < bytes.count {
            if current == nil {
                pthread_mutex_lock(&mutex)
                while free.isEmpty && failure == nil { pthread_cond_wait(&changed, &mutex) }
                if let failure {
                    pthread_mutex_unlock(&mutex)
                    return failure
                }
                current = free.removeLast()
                pthread_mutex_unlock(&mutex)
                used = 0
            }
            let n = min(blockSize - used, bytes.count - done)
            (current!.baseAddress! + used).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            used += n
            done += n
            if used == blockSize {
                if let failure = enqueue() { return failure }
            }
        }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return failure
    }

    /// Waits until everything appended is written; returns the first write error, if any.
    func drain() -> Int32? {
        if used > 0 { _ = enqueue() }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while (!queue.isEmpty || writing) && failure == nil { pthread_cond_wait(&changed, &mutex) }
        return failure
    }

    /// Writes what is queued, then ends the threads (without waiting for the disk).
    func stop() {
        _ = drain()
        guard thread != nil || flusher != nil else { return }
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        if let thread { pthread_join(thread, nil) }
        if let flusher { pthread_join(flusher, nil) }
        thread = nil
        flusher = nil
    }

    /// Ends the flusher after the chunk it is on (without flushing the rest); returns the first
    /// error of a write or of the flusher's waits, which only this call may see.
    func stopFlushing() -> Int32? {
        pthread_mutex_lock(&mutex)
        flushUnsupported = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        if let flusher { pthread_join(flusher, nil) }
        flusher = nil
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return failure
    }

    /// After ``drain()`` and a change of the file's length: the next byte goes at `position`.
    func moved(to position: Int64) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while flushing { pthread_cond_wait(&changed, &mutex) }
        writtenEnd = position
        requestedEnd = position
        flushedEnd = position
        checksum = 0
    }

    /// Starts keeping a CRC-32 of the bytes written (from the next one on).
    func keepChecksum() {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        checksumming = true
        checksum = 0
    }

    /// After ``drain()``: the CRC-32 of the bytes written since the last call (or since
    /// ``keepChecksum()``), starting over.
    func takeChecksum() -> UInt32 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let crc = checksum
        checksum = 0
        return crc
    }

    private func enqueue() -> Int32? {
        guard let block = current else { return nil }
        current = nil
        if !started {
            started = true
            startThread()
        }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if failure != nil {
            free.append(block)
        } else {
            queue.append((block, used))
            pthread_cond_broadcast(&changed)
        }
        used = 0
        return failure
    }

    private func startThread() {
        // The flusher first, so that the writing thread knows whether there is one to wait
        // for; without one, writing goes on and the checkpoints' syncs do the flushing.
        if flushFD >= 0 { flusher = try? PipeRun.startThread({ self.flush() }).get() }
        thread = try? PipeRun.startThread({ self.writeQueued() }).get()
        pthread_mutex_lock(&mutex)
        if flusher == nil { flushUnsupported = true }
        if thread == nil { failure = EAGAIN }
        pthread_mutex_unlock(&mutex)
    }

    /// The flusher thread: hands each chunk written to the kernel, then waits for the one
    /// before it, so that about two chunks are on their way to the disk at any time.
    private func flush() {
        pthread_mutex_lock(&mutex)
        while true {
            while requestedEnd >= writtenEnd && !stopping && !flushUnsupported { pthread_cond_wait(&changed, &mutex) }
            if stopping || flushUnsupported { break }
            let previous = (start: flushedEnd, end: requestedEnd)
            let start = requestedEnd
            let end = min(writtenEnd, start + Self.flushChunk)
            requestedEnd = end
            flushing = true
            pthread_mutex_unlock(&mutex)
            var rc = cscan_start_writeback(flushFD, start, end - start)
            if rc == 0 && previous.end > previous.start {
                rc = cscan_finish_writeback(flushFD, previous.start, previous.end - previous.start)
            }
            let err = rc == 0 ? 0 : errno
            pthread_mutex_lock(&mutex)
            flushing = false
            if err != 0 {
                flushUnsupported = true
                // The disk failed a write (EIO, ENOSPC): the job must not go on as if it had not.
                if ![EINVAL, ENOSYS, ESPIPE, EBADF, EINTR].contains(err), failure == nil { failure = err }
            }
            flushedEnd = previous.end
            pthread_cond_broadcast(&changed)
        }
        flushing = false
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// The writing thread.
    private func writeQueued() {
        pthread_mutex_lock(&mutex)
        while true {
            while queue.isEmpty && !stopping { pthread_cond_wait(&changed, &mutex) }
            if queue.isEmpty { break }
            let item = queue.removeFirst()
            writing = true
            // Far ahead of the disk: wait for the flusher.
            while writtenEnd - flushedEnd > Self.maxUnflushed && !flushUnsupported && failure == nil
                    && !stopping {
                pthread_cond_wait(&changed, &mutex)
            }
            let failed = failure != nil
            let offset = writtenEnd
            let summing = checksumming
            var crc = checksum
            pthread_mutex_unlock(&mutex)
            var error: Int32? = nil
            let bytes = UnsafeRawBufferPointer(start: item.block.baseAddress, count: item.count)
            if !failed {
                error = pwriteAll(fd, bytes, at: offset)
            }
            if error == nil && !failed && summing { crc = CRC32.update(crc, bytes) }
            pthread_mutex_lock(&mutex)
            if error == nil && !failed {
                writtenEnd = offset + Int64(item.count)
                checksum = crc
            }
            writing = false
            if let error, failure == nil { failure = error }
            free.append(item.block)
            pthread_cond_broadcast(&changed)
        }
        pthread_mutex_unlock(&mutex)
    }
}
