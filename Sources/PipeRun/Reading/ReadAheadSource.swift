import Synchronization

/// Runs another byte source on a thread of its own, a few blocks ahead of the reader, so that
/// decompression overlaps with parsing and transforms (on a 2-core machine a gzip job then
/// costs about what decompression alone costs).
///
/// Position the wrapped source (resume) before ``start()``; ``stop()`` ends the thread.
package final class ReadAheadSource: ByteSource, @unchecked Sendable {
    private struct Chunk {
        var bytes: UnsafeMutableRawBufferPointer
        var count: Int
    }

    private struct State {
        var ready: [Chunk] = []
        var free: [UnsafeMutableRawBufferPointer] = []
        var finished = false
        var failure: (any Error)?
        var stopping = false
    }

    let wrapped: any ByteSource
    let shouldStop: () -> Bool
    private let chunkSize: Int
    private let depth: Int
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var state = State()
    private var thread: pthread_t?
    private var current: Chunk?
    private var currentPosition = 0
    private var stopped = false

    package init(wrapping source: any ByteSource, chunkSize: Int = 1 << 20, depth: Int = 4,
                 shouldStop: @escaping () -> Bool) {
        wrapped = source
        self.chunkSize = chunkSize
        self.depth = depth
        self.shouldStop = shouldStop
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<depth {
            state.free.append(.allocate(byteCount: chunkSize, alignment: 64))
        }
    }

    deinit {
        stop()
        for chunk in state.free { chunk.deallocate() }
        for chunk in state.ready { chunk.bytes.deallocate() }
        if let current { current.bytes.deallocate() }
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Starts reading ahead.
    package func start() {
        guard thread == nil else { return }
        let context = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { raw in
            let source = Unmanaged<ReadAheadSource>.fromOpaque(raw!).takeRetainedValue()
            source.produce()
            return nil
        }, context)
        if rc == 0 {
            thread = t
        } else {
            Unmanaged<ReadAheadSource>.fromOpaque(context).release()
            lock()
            state.failure = PipeRunError(.ioError, "cannot start the read-ahead thread")
            unlock()
        }
    }

    /// Stops the thread and waits for it.
    package func stop() {
        stopped = true
        guard let thread else { return }
        lock()
        state.stopping = true
        pthread_cond_broadcast(&changed)
        unlock()
        pthread_join(thread, nil)
        self.thread = nil
    }

    private func lock() { pthread_mutex_lock(&mutex) }
    private func unlock() { pthread_mutex_unlock(&mutex) }

    private func produce() {
        while true {
            lock()
            while state.free.isEmpty && !state.stopping { pthread_cond_wait(&changed, &mutex) }
            if state.stopping {
                unlock()
                return
            }
            let buffer = state.free.removeLast()
            unlock()
            var count = 0
            var failure: (any Error)? = nil
            do {
                // Fill the chunk, so the reader gets big blocks.
                while count < buffer.count {
                    let n = try wrapped.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
                    if n == 0 { break }
                    count += n
                }
            } catch {
                failure = error
            }
            lock()
            if count > 0 {
                state.ready.append(Chunk(bytes: buffer, count: count))
            } else {
                state.free.append(buffer)
            }
            if let failure {
                state.failure = failure
            } else if count < buffer.count {
                state.finished = true
            }
            pthread_cond_broadcast(&changed)
            let done = state.failure != nil || state.finished
            unlock()
            if done { return }
        }
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if thread == nil && !stopped { start() }
        if current == nil {
            lock()
            while state.ready.isEmpty && !state.finished && state.failure == nil {
                // Wake up now and then to notice a stop signal while the producer is blocked.
                var deadline = timespec()
                clock_gettime(CLOCK_REALTIME, &deadline)
                deadline.tv_nsec += 50_000_000
                if deadline.tv_nsec >= 1_000_000_000 {
                    deadline.tv_sec += 1
                    deadline.tv_nsec -= 1_000_000_000
                }
                pthread_cond_timedwait(&changed, &mutex, &deadline)
                if state.ready.isEmpty && shouldStop() {
                    unlock()
                    throw ReadInterrupted()
                }
            }
            if state.ready.isEmpty {
                let failure = state.failure
                unlock()
                if let failure { throw failure }
                try wrapped.consumed(UnsafeRawBufferPointer(start: nil, count: 0))
                return 0
            }
            current = state.ready.removeFirst()
            currentPosition = 0
            unlock()
        }
        let chunk = current!
        let n = min(buffer.count, chunk.count - currentPosition)
        buffer.baseAddress!.copyMemory(from: chunk.bytes.baseAddress! + currentPosition, byteCount: n)
        try wrapped.consumed(UnsafeRawBufferPointer(start: buffer.baseAddress!, count: n))
        currentPosition += n
        if currentPosition == chunk.count {
            lock()
            state.free.append(chunk.bytes)
            pthread_cond_broadcast(&changed)
            unlock()
            current = nil
        }
        return n
    }

    package func seek(to offset: Int64) throws {
        guard thread == nil else {
            throw PipeRunError(.ioError, "cannot seek while reading ahead")
        }
        try wrapped.seek(to: offset)
    }
}
