import CZlib
import Synchronization

/// Decompresses a gzip file (one or many members, as `cat a.gz b.gz`, pigz or bgzip write them)
/// and remembers access points, so that a job can resume in the middle of the file in constant
/// time instead of decompressing it again from the top.
///
/// Each member's header is parsed in gzip mode; its body is inflated as raw deflate one block at
/// a time (`Z_BLOCK`), with this type computing the CRC-32 and length itself and checking them
/// against the member's trailer. zlib's own check value cannot be restored after a resume; ours
/// can, so the trailer is verified even for a member that spans a resume. The CRC-32 is
/// computed in ``consumed(_:)``, on another thread (``ReadAheadSource`` calls it), so that it
/// does not slow decompression down: whoever reads this source must hand it every byte.
package final class GzipByteSource: ByteSource, @unchecked Sendable {
    /// Minimum uncompressed distance between two remembered access points.
    let pointSpacing: Int64
    /// How many points to keep (with 32 KiB windows): the reader is never this far behind.
    static let pointLimit = 64

    private enum Mode { case header, body, trailer, betweenMembers, done }

    let input: InputFile
    let shouldStop: () -> Bool
    private let stream: UnsafeMutablePointer<z_stream>
    private let inBuffer: UnsafeMutablePointer<UInt8>
    private let inCapacity = 256 << 10
    /// Bytes given to `read` before the file's own (for standard input, the sniffed magic).
    private var prefix: [UInt8]
    /// Compressed offset just past the bytes handed to zlib so far.
    private var fed: Int64 = 0
    /// `fed`, for other threads (the progress line) while a read-ahead thread decompresses.
    private let fedSoFar = Atomic<Int64>(0)
    private var inputEnded = false
    private var mode = Mode.header
    private var member = 1
    private var memberStart: Int64 = 0
    private var memberLength: Int64 = 0
    /// Uncompressed bytes produced so far, counting from the start of the file.
    private var produced: Int64 = 0
    /// Recent access points, oldest first. Guarded: with read-ahead, the decompressing thread
    /// adds points while the driver takes one for a checkpoint.
    private let points = Mutex<[(point: GzipAccessPoint, window: [UInt8])]>([])

    /// A member's end, where the consumer compares its CRC-32 with the trailer's.
    private struct MemberCheck {
        var end: Int64
        var crc: UInt32
        var member: Int
        var memberStart: Int64
        var trailer: Int64
    }

    /// What the decompressing thread leaves for the consumer to check or complete: member
    /// ends, and access points whose CRC-32 is not known yet.
    private struct Verification {
        var checks: [MemberCheck] = []
        /// Uncompressed offsets of block-end points still missing their CRC-32, in order.
        var pendingPoints: [Int64] = []
    }
    private let verification = Mutex(Verification())
    /// The consumer's side: the next uncompressed offset to check, and the member's CRC-32 so far.
    private var verifyOffset: Int64 = 0
    private var verifyCRC: UInt32 = 0
    private var lastPoint: Int64 = -1
    private var trailer: [UInt8] = []
    private let window = UnsafeMutablePointer<UInt8>.allocate(capacity: 32768)

    package init(_ input: InputFile, prefix: [UInt8] = [], pointSpacing: Int64 = 512 << 10,
                 shouldStop: @escaping () -> Bool) throws {
        self.input = input
        self.pointSpacing = max(pointSpacing, 1)
        self.prefix = prefix
        self.shouldStop = shouldStop
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        inBuffer = .allocate(capacity: inCapacity)
        guard czlib_inflateInit2(stream, 31) == Z_OK else {
            throw PipeRunError(.ioError, "cannot start zlib for \(input.path)")
        }
        rememberMemberStart()
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        inBuffer.deallocate()
        window.deallocate()
    }

    /// Compressed bytes consumed so far (for progress).
    package var compressedPosition: Int64 { fed - Int64(stream.pointee.avail_in) }
    /// The compressed bytes read so far: safe to ask from any thread.
    package var compressedBytesRead: Int64 { fedSoFar.load(ordering: .relaxed) }

    /// Whether the first bytes of `bytes` are the gzip magic number.
    package static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    // MARK: Reading

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written = 0
        while written < buffer.count {
            switch mode {
            case .done:
                return written
            case .header:
                try readHeader()
            case .body:
                written += try inflateBody(into: out + written, count: buffer.count - written)
                if mode == .body && written > 0 && written >= buffer.count / 2 { return written }
            case .trailer:
                try checkTrailer()
            case .betweenMembers:
                try startNextMember()
            }
        }
        return written
    }

    /// Refills zlib's input when it is empty; returns false at the end of the file.
    private func refill() throws -> Bool {
        if stream.pointee.avail_in > 0 { return true }
        if inputEnded { return false }
        var n = 0
        if !prefix.isEmpty {
            n = prefix.count
            prefix.withUnsafeBytes { inBuffer.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: n) }
            prefix = []
        } else {
            while true {
                n = systemRead(input.fd, inBuffer, inCapacity)
                if n >= 0 { break }
                if errno == EINTR {
                    if shouldStop() { throw ReadInterrupted() }
                    continue
                }
                throw PipeRunError(.ioError, "cannot read \(input.path): \(describe(errno: errno))")
            }
        }
        if n == 0 {
            inputEnded = true
            return false
        }
        stream.pointee.next_in = inBuffer
        stream.pointee.avail_in = uInt(n)
        fed += Int64(n)
        fedSoFar.store(fed, ordering: .relaxed)
        return true
    }

    private func fail(_ what: String, at offset: Int64? = nil) -> PipeRunError {
        PipeRunError(.dataError, "\(input.path): gzip member \(member) (starting at compressed byte \(memberStart)): \(what) at compressed byte \(offset ?? compressedPosition)")
    }

    private func zlibMessage() -> String {
        stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
    }

    private func readHeader() throws {
        guard try refill() else {
            throw fail("unexpected end of file in the gzip header")
        }
        // A header produces no output; zlib still wants somewhere to point.
        stream.pointee.next_out = window
        stream.pointee.avail_out = 0
        let rc = inflate(stream, Z_BLOCK)
        if rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR || rc == Z_MEM_ERROR {
            throw fail("bad gzip header (\(zlibMessage()))")
        }
        if stream.pointee.data_type & 128 != 0 {
            // The header is done: inflate the body as raw deflate, checking the trailer ourselves.
            inflateReset2(stream, -15)
            mode = .body
        }
    }

    private func inflateBody(into out: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        if stream.pointee.avail_in == 0 {
            guard try refill() else { throw fail("unexpected end of file (truncated?)") }
        }
        stream.pointee.next_out = out
        stream.pointee.avail_out = uInt(count)
        let rc = inflate(stream, Z_BLOCK)
        let n = count - Int(stream.pointee.avail_out)
        if n > 0 {
            // The CRC-32 is computed by the consumer, in consumed(_:), off this thread.
            memberLength += Int64(n)
            produced += Int64(n)
        }
        switch rc {
        case Z_STREAM_END:
            mode = .trailer
            trailer.removeAll(keepingCapacity: true)
        case Z_OK, Z_BUF_ERROR:
            let type = stream.pointee.data_type
            if type & 128 != 0 && type & 64 == 0 && produced - lastPoint >= pointSpacing {
                rememberBlockEnd(bits: Int(type & 7))
            }
        default:
            throw fail("corrupt deflate data (\(zlibMessage()))")
        }
        return n
    }

    private func checkTrailer() throws {
        while trailer.count < 8 {
            guard try refill() else { throw fail("unexpected end of file in the gzip trailer (truncated?)") }
            let take = min(8 - trailer.count, Int(stream.pointee.avail_in))
            trailer.append(contentsOf: UnsafeBufferPointer(start: stream.pointee.next_in, count: take))
            stream.pointee.next_in += take
            stream.pointee.avail_in -= uInt(take)
        }
        let expectedCRC = UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let expectedSize = UInt32(trailer[4]) | UInt32(trailer[5]) << 8 | UInt32(trailer[6]) << 16 | UInt32(trailer[7]) << 24
        let check = MemberCheck(end: produced, crc: expectedCRC, member: member, memberStart: memberStart,
                                trailer: compressedPosition - 8)
        verification.withLock { $0.checks.append(check) }
        guard expectedSize == UInt32(truncatingIfNeeded: memberLength) else {
            throw fail("length mismatch (trailer says \(expectedSize), data gives \(memberLength))", at: compressedPosition - 4)
        }
        mode = .betweenMembers
    }

    private func startNextMember() throws {
        guard try refill() else {
            mode = .done
            return
        }
        let next = stream.pointee.next_in!
        if next[0] == 0 {
            // Zero padding after the last member is accepted, as gzip accepts it.
            while try refill() {
                let avail = Int(stream.pointee.avail_in)
                let p = stream.pointee.next_in!
                for i in 0..<avail where p[i] != 0 {
                    throw fail("garbage after the end of the member", at: compressedPosition + Int64(i))
                }
                stream.pointee.next_in += avail
                stream.pointee.avail_in = 0
            }
            mode = .done
            return
        }
        if next[0] == 0x1F {
            if stream.pointee.avail_in < 2 {
                // Only one byte left in the buffer: look at the next one in the file.
                let second = try input.read(at: fed, count: 1)
                guard second == [0x8B] else { throw fail("garbage after the end of the member") }
            } else if next[1] != 0x8B {
                throw fail("garbage after the end of the member")
            }
            member += 1
            memberStart = compressedPosition
            memberLength = 0
            inflateReset2(stream, 31)
            mode = .header
            rememberMemberStart()
            return
        }
        throw fail("garbage after the end of the member")
    }

    // MARK: Checking CRC-32s, on another thread

    /// Takes the bytes this source produced (in order, all of them; an empty buffer at the end
    /// of the input): computes each member's CRC-32, compares it with the trailer at the
    /// member's end, and fills in the CRC-32 of the access points on the way.
    package func consumed(_ bytes: UnsafeRawBufferPointer) throws {
        var p = 0
        while true {
            try settle()
            guard p < bytes.count else { return }
            let boundary = verification.withLock { v in
                min(v.checks.first?.end ?? Int64.max, v.pendingPoints.first ?? Int64.max)
            }
            let take = Int(min(Int64(bytes.count - p), boundary - verifyOffset))
            verifyCRC = CRC32.update(verifyCRC, UnsafeRawBufferPointer(start: bytes.baseAddress! + p, count: take))
            verifyOffset += Int64(take)
            p += take
        }
    }

    /// Handles the member ends and access points at ``verifyOffset``.
    private func settle() throws {
        let offset = verifyOffset
        let crcHere = verifyCRC
        let (failed, ended) = verification.withLock { v -> (MemberCheck?, Bool) in
            while let first = v.pendingPoints.first, first <= offset {
                v.pendingPoints.removeFirst()
                if first == offset {
                    points.withLock { list in
                        if let i = list.lastIndex(where: { $0.point.uncompressedOffset == offset && !$0.point.atMemberStart }) {
                            list[i].point.crc = crcHere
                        }
                    }
                }
            }
            // Several members can end here (empty ones): after the first, each starts from 0.
            var ended = false
            var current = crcHere
            while let check = v.checks.first, check.end <= offset {
                v.checks.removeFirst()
                if check.crc != current { return (check, true) }
                current = 0
                ended = true
            }
            return (nil, ended)
        }
        if let failed {
            throw PipeRunError(.dataError, "\(input.path): gzip member \(failed.member) (starting at compressed byte \(failed.memberStart)): CRC-32 mismatch (trailer says \(hex(failed.crc)), data gives \(hex(crcHere))) at compressed byte \(failed.trailer)")
        }
        if ended { verifyCRC = 0 }
    }

    // MARK: Access points

    private func rememberMemberStart() {
        let point = GzipAccessPoint(
            uncompressedOffset: produced, compressedOffset: memberStart, bits: 0, member: member,
            memberStart: memberStart, atMemberStart: true, crc: 0, memberLength: 0, window: "", windowLength: 0)
        points.withLock { $0.append((point, [])) }
        lastPoint = produced
    }

    private func rememberBlockEnd(bits: Int) {
        var length: uInt = 32768
        guard inflateGetDictionary(stream, window, &length) == Z_OK else { return }
        // Its CRC-32 is filled in by the consumer when it gets there.
        let point = GzipAccessPoint(
            uncompressedOffset: produced, compressedOffset: compressedPosition, bits: bits, member: member,
            memberStart: memberStart, atMemberStart: false, crc: 0, memberLength: memberLength,
            window: "", windowLength: Int(length))
        verification.withLock { $0.pendingPoints.append(produced) }
        let saved = Array(UnsafeBufferPointer(start: window, count: Int(length)))
        points.withLock {
            $0.append((point, saved))
            if $0.count > Self.pointLimit { $0.removeFirst() }
        }
        lastPoint = produced
    }

    /// The latest access point at or before `offset` (an uncompressed offset the reader has
    /// reached), with its window packed; forgets the points before it.
    package func accessPoint(atOrBefore offset: Int64) -> GzipAccessPoint? {
        let chosen: (point: GzipAccessPoint, window: [UInt8])? = points.withLock { points in
            guard let index = points.lastIndex(where: { $0.point.uncompressedOffset <= offset }) else { return nil }
            points.removeFirst(index)
            return points[0]
        }
        guard var point = chosen?.point else { return nil }
        point.window = GzipAccessPoint.packWindow(chosen!.window)
        return point
    }

    // MARK: Resuming

    package func seek(to offset: Int64) throws {
        guard offset == 0 else {
            throw PipeRunError(.dataError, "\(input.path): cannot resume inside a gzip file without an access point; add --restart")
        }
        try resume(from: GzipAccessPoint(
            uncompressedOffset: 0, compressedOffset: 0, bits: 0, member: 1, memberStart: 0, atMemberStart: true,
            crc: 0, memberLength: 0, window: "", windowLength: 0), to: 0)
    }

    /// Restarts decompression at `point`, then decompresses and drops the bytes up to `offset`.
    /// Returns how many bytes it had to drop.
    @discardableResult
    package func resume(from point: GzipAccessPoint, to offset: Int64) throws -> Int64 {
        guard point.uncompressedOffset <= offset, point.bits >= 0, point.bits < 8, point.member >= 1,
              point.memberStart >= 0, point.compressedOffset >= point.memberStart,
              point.compressedOffset <= input.size, let raw = point.unpackedWindow() else {
            throw PipeRunError(.dataError, "\(input.path): the checkpoint's gzip access point is damaged; add --restart")
        }
        var start = point.atMemberStart ? point.memberStart : point.compressedOffset
        var primeByte: UInt8 = 0
        if !point.atMemberStart && point.bits > 0 {
            start -= 1
            primeByte = try input.read(at: start, count: 1).first ?? 0
            start += 1
        }
        guard lseek(input.fd, off_t(start), SEEK_SET) >= 0 else {
            throw PipeRunError(.ioError, "cannot seek \(input.path) to byte \(start): \(describe(errno: errno))")
        }
        prefix = []
        inputEnded = false
        fed = start
        fedSoFar.store(fed, ordering: .relaxed)
        stream.pointee.avail_in = 0
        stream.pointee.next_in = nil
        member = point.member
        memberStart = point.memberStart
        produced = point.uncompressedOffset
        points.withLock { $0.removeAll() }
        verification.withLock { $0 = Verification() }
        verifyOffset = point.uncompressedOffset
        verifyCRC = point.atMemberStart ? 0 : point.crc
        if point.atMemberStart {
            inflateReset2(stream, 31)
            memberLength = 0
            mode = .header
            rememberMemberStart()
        } else {
            inflateReset2(stream, -15)
            if point.bits > 0 {
                inflatePrime(stream, Int32(point.bits), Int32(primeByte >> (8 - point.bits)))
            }
            if !raw.isEmpty {
                inflateSetDictionary(stream, raw, uInt(raw.count))
            }
            memberLength = point.memberLength
            mode = .body
            points.withLock { $0.append((point, raw)) }
            lastPoint = produced
        }
        // Decompress up to the cursor, dropping the bytes: they were processed before.
        var skip = offset - produced
        let skipped = skip
        defer { _ = skipped }
        if skip > 0 {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { scratch.deallocate() }
            while skip > 0 {
                let want = Int(min(skip, Int64(scratch.count)))
                let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<want]))
                try consumed(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                if n == 0 {
                    throw PipeRunError(.dataError, "\(input.path): the gzip data ends before the checkpoint's cursor; add --restart")
                }
                skip -= Int64(n)
            }
        }
        return skipped
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
