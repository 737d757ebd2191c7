/// Where a ``RecordReader`` gets its bytes: a plain file now, a decompressor later.
package protocol ByteSource: AnyObject {
    /// Fills the front of `buffer` with the next bytes; returns 0 at the end of the input.
    /// Throws ``ReadInterrupted`` when a signal interrupted a blocking read and the job should stop.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Moves to `offset` (in the source's own byte numbering).
    func seek(to offset: Int64) throws
    /// Told about the bytes the reader will get, all of them in order (an empty buffer at the
    /// end), on another thread than the one that read them: a source may check them there.
    func consumed(_ bytes: UnsafeRawBufferPointer) throws
}

extension ByteSource {
    package func consumed(_ bytes: UnsafeRawBufferPointer) throws {}
}

/// A source that can also list where the special bytes of a CSV or TSV reader (its
/// delimiter, quote, CR, LF) are in what it returns, having found them on another thread.
package protocol IndexingByteSource: ByteSource {
    /// The delimiter whose special bytes this source lists, or nil when it lists none.
    var indexedDelimiter: UInt8? { get }
    /// Like ``ByteSource/read(into:)``; also writes to `specials` (room for `buffer.count`
    /// entries) `base` plus the position of each special byte returned, in order.
    func read(into buffer: UnsafeMutableRawBufferPointer, specials: UnsafeMutablePointer<UInt32>?,
              base: UInt32) throws -> (bytes: Int, specials: Int)
}

/// A blocking read was interrupted by a signal that asks the job to stop.
package struct ReadInterrupted: Error {}

/// Reads a file descriptor with `read(2)`.
package final class FileByteSource: ByteSource {
    let input: InputFile
    /// Asked when a read returns EINTR: true means stop instead of retrying.
    let shouldStop: () -> Bool
    /// Bytes already read from a pipe to sniff the format, returned first.
    private var prefix: [UInt8]

    package init(_ input: InputFile, prefix: [UInt8] = [], shouldStop: @escaping () -> Bool) {
        self.input = input
        self.prefix = prefix
        self.shouldStop = shouldStop
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if !prefix.isEmpty {
            let n = min(prefix.count, buffer.count)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            prefix.removeFirst(n)
            return n
        }
        while true {
            let n = systemRead(input.fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let err = errno
            if err == EINTR {
                if shouldStop() { throw ReadInterrupted() }
                continue
            }
            throw PipeRunError(.ioError, "cannot read \(input.path): \(describe(errno: err))")
        }
    }

    package func seek(to offset: Int64) throws {
        prefix = []
        guard lseek(input.fd, off_t(offset), SEEK_SET) >= 0 else {
            throw PipeRunError(.ioError, "cannot seek \(input.path) to byte \(offset): \(describe(errno: errno))")
        }
    }
}
