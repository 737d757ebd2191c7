import CZlib
import Foundation

/// Writes `data` as BGZF, as bgzip does: gzip members of at most `blockSize` input bytes, each
/// with a `BC` extra field giving its size, and the empty end-of-file member.
func bgzf(_ data: [UInt8], blockSize: Int = 65280, level: Int32 = 6) -> [UInt8] {
    var out: [UInt8] = []
    var start = 0
    func member(_ input: ArraySlice<UInt8>) {
        let body = deflated(Array(input), windowBits: -15, level: level)
        let bodyLength = body.count
        let crc = input.withContiguousStorageIfAvailable { crc32(0, $0.baseAddress, uInt($0.count)) } ?? 0
        let total = 18 + bodyLength + 8
        let bsize = total - 1
        out += [0x1F, 0x8B, 8, 4, 0, 0, 0, 0, 0, 0xFF, 6, 0, 66, 67, 2, 0, UInt8(bsize & 0xFF), UInt8(bsize >> 8)]
        out += body[0..<bodyLength]
        for v in [UInt32(crc), UInt32(input.count)] {
            out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
        }
    }
    while start < data.count {
        let end = min(start + blockSize, data.count)
        member(data[start..<end])
        start = end
    }
    member([])
    return out
}

/// `data` as one ordinary gzip member (as `gzip` writes).
func gzipped(_ data: [UInt8], level: Int32 = 6) -> [UInt8] {
    deflated(data, windowBits: 31, level: level)
}

/// `data` compressed by zlib's deflate: raw (`windowBits` -15) or gzip (31).
private func deflated(_ data: [UInt8], windowBits: Int32, level: Int32) -> [UInt8] {
    var stream = z_stream()
    precondition(czlib_deflateInit2(&stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK)
    var out = [UInt8](repeating: 0, count: data.count + data.count / 8 + 1024)
    var length = 0
    data.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress)
            stream.avail_in = uInt(src.count)
            stream.next_out = dst.baseAddress
            stream.avail_out = uInt(dst.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            length = dst.count - Int(stream.avail_out)
        }
    }
    deflateEnd(&stream)
    return Array(out[0..<length])
}
