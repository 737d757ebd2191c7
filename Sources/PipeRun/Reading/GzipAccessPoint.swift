#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CZlib

/// A place in a gzip file where decompression can start again without the bytes before it:
/// the end of a deflate block (bit offset plus the 32 KiB window, the technique of zlib's
/// `examples/zran.c`), or the start of a member.
///
/// The member's running CRC-32 and length travel with it, so the member's trailer is still
/// checked after a resume.
package struct GzipAccessPoint: Codable, Sendable, Equatable {
    /// Offset in the uncompressed stream (all members together).
    package var uncompressedOffset: Int64
    /// Offset in the compressed file of the first whole byte to read; with ``bits`` > 0, the
    /// byte before it is partly unread.
    package var compressedOffset: Int64
    /// Unused bits (0...7) of the byte at `compressedOffset - 1`.
    package var bits: Int
    /// The member's number, from 1.
    package var member: Int
    /// Offset of the member's gzip header in the compressed file.
    package var memberStart: Int64
    /// True when the point is the very start of a member (its header is read again).
    package var atMemberStart: Bool
    /// CRC-32 of the member's uncompressed bytes before the point.
    package var crc: UInt32
    /// The member's uncompressed bytes before the point.
    package var memberLength: Int64
    /// The last (up to) 32 KiB of uncompressed data before the point, compressed with zlib and
    /// written in base64; empty at a member's start.
    package var window: String
    package var windowLength: Int

    /// Packs a raw window for the checkpoint.
    static func packWindow(_ raw: [UInt8]) -> String {
        guard !raw.isEmpty else { return "" }
        var packedLength = compressBound(uLong(raw.count))
        var packed = [UInt8](repeating: 0, count: Int(packedLength))
        let rc = compress2(&packed, &packedLength, raw, uLong(raw.count), 1)
        precondition(rc == Z_OK, "compress2 cannot fail with a large enough buffer")
        return Data(packed[0..<Int(packedLength)]).base64EncodedString()
    }

    /// The raw window, or nil when it is damaged.
    func unpackedWindow() -> [UInt8]? {
        guard windowLength > 0 else { return [] }
        guard windowLength <= 32768, let packed = Data(base64Encoded: window) else { return nil }
        var raw = [UInt8](repeating: 0, count: windowLength)
        var rawLength = uLong(windowLength)
        let rc = packed.withUnsafeBytes { p in
            uncompress(&raw, &rawLength, p.bindMemory(to: Bytef.self).baseAddress, uLong(packed.count))
        }
        return rc == Z_OK && Int(rawLength) == windowLength ? raw : nil
    }

    /// Where this point's bytes start in the compressed file (for hashing what precedes it).
    package var resumeOffset: Int64 {
        atMemberStart ? memberStart : compressedOffset - (bits > 0 ? 1 : 0)
    }
}
