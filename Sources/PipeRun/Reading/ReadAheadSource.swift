import CScan

/// Runs another byte source on threads of its own, a few blocks ahead of the reader, so that
/// decompression overlaps with parsing and transforms (on a 2-core machine a gzip job then
/// costs about what decompression alone costs).
///
/// One thread reads (decompresses) blocks; a second hands each block, in order, to the
/// source's ``ByteSource/consumed(_:)`` (for gzip: the CRC-32 checks) and, for a CSV or TSV
/// reader, lists the block's special bytes (see ``IndexingByteSource``), before the reader gets
/// it. Position the wrapped source (a resume) before the first read, which starts the threads;
/// ``stop()`` ends them.
///
/// A reader can also borrow a whole block instead of copying it (``takeBlock()``): each block
/// has ``headroom`` free bytes in front, where the reader puts the partial record it has left,
/// so that the record and the block are one run of memory.
package final class ReadAheadSource: IndexingByteSource, @unchecked Sendable {
    fileprivate struct Chunk {
        /// The allocation: ``headroom`` bytes, then the block (`bytes`).
        var start: UnsafeMutablePointer<UInt8>
        var bytes: UnsafeMutableRawBufferPointer
        var count = 0
        /// The allocation: ``headroom`` entries, then the positions of the block's special
        /// bytes (counted from `start`), when indexing.
        var specialsStart: UnsafeMutablePointer<UInt32>
        var specials: UnsafeMutablePointer<UInt32>
        var specialCount = 0
        /// The block's records, when parsed on the read-ahead thread (``parsesRecords``).
        var parser: BlockParser?

        init(headroom: Int, size: Int, entries: Int) {
            // Page-aligned (the headroom is a multiple of a page): the kernel copies into an
            // aligned block several times faster.
            start = UnsafeMutableRawPointer.allocate(byteCount: headroom + size, alignment: 4096)
                .bindMemory(to: UInt8.self, capacity: headroom + size)
            bytes = UnsafeMutableRawBufferPointer(start: start + headroom, count: size)
            specialsStart = .allocate(capacity: headroom + entries)
            specials = specialsStart + headroom
        }

        func deallocate() {
            start.deallocate()
            specialsStart.deallocate()
        }
    }

    /// A block lent whole to a reader (``takeBlock()``), until ``giveBack(_:)``.
    package struct LentBlock {
        /// The memory: ``headroom`` free bytes, then `count` bytes of input.
        package let start: UnsafeMutablePointer<UInt8>
        package let count: Int
        /// The special bytes' positions (counted from `start`), with ``headroom`` free entries
        /// before the first and room for 65 after the last.
        package let specials: UnsafeMutablePointer<UInt32>
        package let specialCount: Int
        /// The block's records parsed ahead, if any (positions counted from `start`).
        package let parsed: BlockParser?
        fileprivate let chunk: Chunk
    }

    private struct State {
        /// Read, waiting to be checked.
        var unchecked: [Chunk] = []
        /// Checked, waiting for the reader.
        var ready: [Chunk] = []
        var free: [Chunk] = []
        var producerDone = false
        var producerFailure: (any Error)?
        /// Seen by the reader: the end, or an error, after the chunks in `ready`.
        var finished = false
        var failure: (any Error)?
        var stopping = false
    }

    let wrapped: any ByteSource
    let shouldStop: () -> Bool
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var state = State()
    private var threads: [pthread_t] = []
    private var current: Chunk?
    private var currentPosition = 0
    private var currentSpecial = 0
    private var stopped = false
    /// The delimiter whose blocks' special bytes are listed, or nil.
    private let indexDelimiter: UInt8?
    /// Free bytes (and special-byte entries) in front of every block.
    package let headroom: Int
    /// The size of a block.
    package let blockSize: Int
    /// Blocks lent to the reader.
    private var lent: [Chunk] = []
    /// When the checking thread also parses the records of blocks (see ``BlockParser``).
    package enum RecordParsing {
        case never
        /// While the reader has blocks waiting (else it would wait for this one).
        case whenReaderBusy
        /// Every block (for tests).
        case always
    }

    /// Set by a reader that borrows blocks, before the first read.
    package var parsesRecords = RecordParsing.never
    /// Bytes to read in whole blocks; after them, blocks of 64 KiB: a range of a job over
    /// ranges reads little past its end (only to finish its last record). Set before the first read.
    package var bulkBytes = Int64.max
    /// Whether the next block to check starts inside quotes (when ``parsesRecords``).
    private var nextStartsInsideQuotes = false

    package init(wrapping source: any ByteSource, chunkSize: Int = 1 << 20, depth: Int = 4, headroom: Int = 64 << 10,
                 indexing delimiter: UInt8? = nil, shouldStop: @escaping () -> Bool) {
        wrapped = source
        self.shouldStop = shouldStop
        indexDelimiter = delimiter
        self.headroom = headroom
        blockSize = chunkSize
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<depth {
            state.free.append(Chunk(headroom: headroom, size: chunkSize, entries: delimiter == nil ? 1 : chunkSize + 65))
        }
    }

    package var indexedDelimiter: UInt8? { indexDelimiter }

    deinit {
        stop()
        for chunk in state.free + state.unchecked + state.ready + lent { chunk.deallocate() }
        if let current { current.deallocate() }
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Starts reading ahead.
    package func start() {
        guard threads.isEmpty else { return }
        for producing in [true, false] {
            switch startThread({ producing ? self.produce() : self.check() }) {
            case .success(let t):
                threads.append(t)
            case .failure(let error):
                lock()
                state.failure = error
                state.stopping = true
                pthread_cond_broadcast(&changed)
                unlock()
            }
        }
    }

    /// Stops the threads and waits for them.
    package func stop() {
        stopped = true
        guard !threads.isEmpty else { return }
        lock()
        state.stopping = true
        pthread_cond_broadcast(&changed)
        unlock()
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    private func lock() { pthread_mutex_lock(&mutex) }
    private func unlock() { pthread_mutex_unlock(&mutex) }

    /// The reading thread: fills free chunks from the wrapped source.
    private func produce() {
        var produced: Int64 = 0
        while true {
            lock()
            while state.free.isEmpty && !state.stopping { pthread_cond_wait(&changed, &mutex) }
            if state.stopping {
                unlock()
                return
            }
            var chunk = state.free.removeLast()
            unlock()
            let buffer = chunk.bytes
            var count = 0
            var failure: (any Error)? = nil
            var ended = false
            let wanted = produced >= bulkBytes ? min(buffer.count, 64 << 10) : buffer.count
            do {
                // Fill the chunk, so the reader gets big blocks.
                while count < wanted {
                    let n = try wrapped.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count..<wanted]))
                    if n == 0 {
                        ended = true
                        break
                    }
                    count += n
                }
            } catch {
                failure = error
            }
            produced += Int64(count)
            chunk.count = count
            chunk.specialCount = 0
            lock()
            if count > 0 {
                state.unchecked.append(chunk)
            } else {
                state.free.append(chunk)
            }
            if let failure {
                state.producerFailure = failure
            } else if ended {
                state.producerDone = true
            }
            pthread_cond_broadcast(&changed)
            let done = state.producerFailure != nil || state.producerDone
            unlock()
            if done { return }
        }
    }

    /// The checking thread: hands each chunk, in order, to the wrapped source's `consumed`.
    private func check() {
        while true {
            lock()
            while state.unchecked.isEmpty && !state.producerDone && state.producerFailure == nil && !state.stopping {
                pthread_cond_wait(&changed, &mutex)
            }
            if state.stopping {
                unlock()
                return
            }
            if state.unchecked.isEmpty {
                // The producer is done: the end (checked too), or its error.
                let producerFailure = state.producerFailure
                unlock()
                var failure = producerFailure
                if failure == nil {
                    do { try wrapped.consumed(UnsafeRawBufferPointer(start: nil, count: 0)) } catch { failure = error }
                }
                lock()
                if let failure { state.failure = failure } else { state.finished = true }
                pthread_cond_broadcast(&changed)
                unlock()
                return
            }
            var chunk = state.unchecked.removeFirst()
            unlock()
            var failure: (any Error)? = nil
            do {
                try wrapped.consumed(UnsafeRawBufferPointer(start: chunk.bytes.baseAddress, count: chunk.count))
            } catch {
                failure = error
            }
            if failure == nil, let delimiter = indexDelimiter {
                chunk.specialCount = cscan_index_specials(chunk.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                          chunk.count, delimiter, UInt32(headroom), chunk.specials)
                if parsesRecords != .never { parseRecords(of: &chunk, delimiter: delimiter) }
            }
            lock()
            if let failure {
                state.free.append(chunk)
                state.failure = failure
            } else {
                state.ready.append(chunk)
            }
            pthread_cond_broadcast(&changed)
            unlock()
            if failure != nil { return }
        }
    }

    /// Parses the chunk's records (see ``parsesRecords``); keeps track of the quotes either way.
    private func parseRecords(of chunk: inout Chunk, delimiter: UInt8) {
        let b = chunk.start
        let end = headroom + chunk.count
        chunk.specials[chunk.specialCount] = UInt32(end)
        var parse = parsesRecords == .always
        if !parse {
            lock()
            parse = !state.ready.isEmpty
            unlock()
        }
        guard parse else {
            chunk.parser?.clear()
            nextStartsInsideQuotes = nextStartsInsideQuotes != BlockParser.oddQuotes(b, chunk.specials, from: 0,
                                                                                       to: chunk.specialCount)
            return
        }
        if chunk.parser == nil { chunk.parser = BlockParser(blockSize: blockSize) }
        nextStartsInsideQuotes = chunk.parser!.parse(b, end: end, specials: chunk.specials,
                                                     count: chunk.specialCount, delimiter: delimiter,
                                                     insideQuotes: nextStartsInsideQuotes)
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try read(into: buffer, specials: nil, base: 0).bytes
    }

    /// The next checked chunk; nil at the end of the input.
    private func nextChunk() throws -> Chunk? {
        if threads.isEmpty && !stopped { start() }
        lock()
        while state.ready.isEmpty && !state.finished && state.failure == nil {
            if state.stopping {
                // Stopped while a reader waits (it reads on a thread of its own).
                unlock()
                throw ReadInterrupted()
            }
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
            return nil
        }
        let chunk = state.ready.removeFirst()
        unlock()
        return chunk
    }

    /// Whether the next block can be lent whole (none is half read).
    package var canLendBlock: Bool { current == nil }

    /// Lends the next block whole (see ``LentBlock``); nil at the end of the input. Only when
    /// ``canLendBlock``.
    package func takeBlock() throws -> LentBlock? {
        precondition(current == nil, "a block is half read")
        guard let chunk = try nextChunk() else { return nil }
        lent.append(chunk)
        return LentBlock(start: chunk.start, count: chunk.count, specials: chunk.specials,
                         specialCount: chunk.specialCount, parsed: chunk.parser?.count ?? 0 > 0 ? chunk.parser : nil,
                         chunk: chunk)
    }

    /// Takes back a block lent by ``takeBlock()``.
    package func giveBack(_ block: LentBlock) {
        lent.removeAll { $0.start == block.start }
        lock()
        state.free.append(block.chunk)
        pthread_cond_broadcast(&changed)
        unlock()
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer, specials: UnsafeMutablePointer<UInt32>?,
                      base: UInt32) throws -> (bytes: Int, specials: Int) {
        if current == nil {
            guard let chunk = try nextChunk() else { return (0, 0) }
            current = chunk
            currentPosition = 0
            currentSpecial = 0
        }
        let chunk = current!
        let n = min(buffer.count, chunk.count - currentPosition)
        buffer.baseAddress!.copyMemory(from: chunk.bytes.baseAddress! + currentPosition, byteCount: n)
        var listed = 0
        if let specials, indexDelimiter != nil {
            // The positions in the part handed over, moved to where it lands.
            // (Positions are counted from the chunk's start, `headroom` bytes before its block.)
            let stop = UInt32(headroom + currentPosition + n)
            let shift = base &- UInt32(headroom + currentPosition)
            let from = chunk.specials + currentSpecial
            let available = chunk.specialCount - currentSpecial
            if currentPosition + n == chunk.count {
                // The rest of the chunk (the usual case): every position left, without a test.
                for i in 0..<available { specials[i] = from[i] &+ shift }
                listed = available
            } else {
                while listed < available && from[listed] < stop {
                    specials[listed] = from[listed] &+ shift
                    listed += 1
                }
            }
            currentSpecial += listed
        }
        currentPosition += n
        if currentPosition == chunk.count {
            lock()
            state.free.append(chunk)
            pthread_cond_broadcast(&changed)
            unlock()
            current = nil
        }
        return (n, listed)
    }

    package func seek(to offset: Int64) throws {
        guard threads.isEmpty else {
            throw PipeRunError(.ioError, "cannot seek while reading ahead")
        }
        try wrapped.seek(to: offset)
    }
}
