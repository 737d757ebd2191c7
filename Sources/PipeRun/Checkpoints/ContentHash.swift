/// A 64-bit FNV-1a hash, written as 16 hex digits: enough to tell that bytes changed, cheap on
/// the few KiB it is given.
package enum ContentHash {
    package static func hex(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBufferPointer { buffer in
            for b in buffer {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01b3
            }
        }
        let digits = String(h, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
