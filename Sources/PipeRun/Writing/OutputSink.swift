import CZlib

/// Where a ``RecordWriter`` sends its formatted bytes: the output file as they are, or through
/// a gzip compressor.
package protocol OutputSink: AnyObject {
    /// Takes the next bytes of the (uncompressed) output.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes everything written so far complete in the file (for gzip: finishes the member, so
    /// the file is a valid gzip file) and returns the file's length.
    func seal() throws -> Int64
}

/// Writes bytes to the output file unchanged.
package final class PlainSink: OutputSink {
    let file: OutputFile
    private var length: Int64

    package init(file: OutputFile, startingAt length: Int64) {
        self.file = file
        self.length = length
    }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes)
        length += Int64(bytes.count)
    }

    package func seal() throws -> Int64 {
        try file.drain()
        return length
    }
}

/// Compresses bytes into gzip members. Every ``seal()`` finishes the current member, so the
/// file is a valid multi-member gzip file at every checkpoint; a resumed job truncates the file
/// to a checkpoint's length and simply starts a new member.
package final class GzipSink: OutputSink {
    let file: OutputFile
    private let stream: UnsafeMutablePointer<z_stream>
    private let out: UnsafeMutablePointer<UInt8>
    private let outCapacity = 256 << 10
    private var length: Int64
    /// Whether the current member has any input yet (an empty member is written only into an
    /// empty file, so that the file is a valid gzip file even when nothing else is written).
    private var memberOpen = false

    package init(file: OutputFile, startingAt length: Int64, level: Int) throws {
        self.file = file
        self.length = length
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        out = .allocate(capacity: outCapacity)
        guard czlib_deflateInit2(stream, Int32(level), Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK else {
            stream.deallocate()
            out.deallocate()
            throw PipeRunError(.usage, "cannot start gzip compression at level \(level)")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        out.deallocate()
    }

    private func run(_ flush: Int32) throws {
        repeat {
            stream.pointee.next_out = out
            stream.pointee.avail_out = uInt(outCapacity)
            let rc = deflate(stream, flush)
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                throw PipeRunError(.ioError, "gzip compression failed for \(file.path) (zlib error \(rc))")
            }
            let n = outCapacity - Int(stream.pointee.avail_out)
            if n > 0 {
                try file.write(UnsafeRawBufferPointer(start: out, count: n))
                length += Int64(n)
            }
            if flush == Z_FINISH && rc == Z_STREAM_END { return }
        } while stream.pointee.avail_out == 0 || (flush == Z_FINISH)
    }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        memberOpen = true
        stream.pointee.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = uInt(bytes.count)
        while stream.pointee.avail_in > 0 {
            try run(Z_NO_FLUSH)
        }
    }

    package func seal() throws -> Int64 {
        if memberOpen || length == 0 {
            try run(Z_FINISH)
            deflateReset(stream)
            memberOpen = false
        }
        try file.drain()
        return length
    }
}
