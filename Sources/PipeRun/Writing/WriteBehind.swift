import CScan

/// Writes a file's bytes on a thread of its own, a few blocks behind the caller, so that the
/// kernel's copy into the page cache overlaps with parsing and formatting.
///
/// ``append(_:)`` copies into a block and queues full blocks; ``drain()`` waits until every
/// byte appended has been written. The first write error is kept: every later call returns it,
/// and the blocks still queued are dropped.
final class WriteBehind: @unchecked Sendable {
    private let fd: Int32
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
    // The caller's own.
    private var current: UnsafeMutableRawBufferPointer?
    private var used = 0

    init(fd: Int32, blockSize: Int = 1 << 20, depth: Int = 4) {
        self.fd = fd
        self.blockSize = blockSize
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<depth { free.append(.allocate(byteCount: blockSize, alignment: 64)) }
    }

    deinit {
        stop()
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

    /// Writes what is queued, then ends the thread.
    func stop() {
        _ = drain()
        guard let thread else { return }
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
        self.thread = nil
    }

    private func enqueue() -> Int32? {
        guard let block = current else { return nil }
        current = nil
        if thread == nil { startThread() }
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
        switch PipeRun.startThread({ self.writeQueued() }) {
        case .success(let t):
            thread = t
        case .failure:
            pthread_mutex_lock(&mutex)
            failure = EAGAIN
            pthread_mutex_unlock(&mutex)
        }
    }

    /// The writing thread.
    private func writeQueued() {
        pthread_mutex_lock(&mutex)
        while true {
            while queue.isEmpty && !stopping { pthread_cond_wait(&changed, &mutex) }
            if queue.isEmpty { break }
            let item = queue.removeFirst()
            let failed = failure != nil
            writing = true
            pthread_mutex_unlock(&mutex)
            var error: Int32? = nil
            if !failed {
                let offset = lseek(fd, 0, SEEK_CUR)
                error = writeAll(fd, UnsafeRawBufferPointer(start: item.block.baseAddress, count: item.count))
                // Start sending the block to the disk now, so the checkpoint's fdatasync finds
                // little left to do (and dirty pages do not pile up).
                if error == nil && offset >= 0 {
                    _ = cscan_start_writeback(fd, Int64(offset), Int64(item.count))
                }
            }
            pthread_mutex_lock(&mutex)
            writing = false
            if let error, failure == nil { failure = error }
            free.append(item.block)
            pthread_cond_broadcast(&changed)
        }
        pthread_mutex_unlock(&mutex)
    }
}
