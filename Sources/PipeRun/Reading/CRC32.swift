import CScan
import CZlib

/// CRC-32 as gzip uses it: folded 64 bytes at a time with carry-less multiplication where the
/// CPU has it (several times faster than zlib's tables), zlib's `crc32` for the rest.
package enum CRC32 {
    /// Whether the folding code runs on this CPU.
    package static let isFolding = cscan_has_fast_crc32() != 0

    /// `crc` continued over `bytes` (start from 0, as with zlib's `crc32`).
    package static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer, folding: Bool = isFolding) -> UInt32 {
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return crc }
        var crc = crc
        var n = bytes.count
        if folding && n >= 64 {
            let folded = n & ~15
            crc = cscan_crc32_fold(crc, p, folded)
            p += folded
            n -= folded
        }
        if n > 0 { crc = UInt32(crc32(uLong(crc), p, uInt(n))) }
        return crc
    }
}
