/// Numbers distinct byte strings 0, 1, 2, ... in order of first appearance, for `count-by` and
/// `dedupe`: an open-addressing hash table over one arena of key bytes, so looking up a key
/// that is already known allocates nothing and hashes only the key's bytes.
struct ByteKeyTable {
    /// All keys' bytes, one after another.
    private var arena: [UInt8] = []
    /// Where key `i` starts in `arena`; key `i` ends where key `i + 1` starts.
    private var starts: [Int] = [0]
    private var hashes: [UInt64] = []
    /// Key number + 1 in each slot, or 0 for an empty slot.
    private var slots: [Int32] = Array(repeating: 0, count: 64)
    /// A per-process seed, so crafted input cannot make every key collide.
    private let seed: UInt64 = .random(in: 1 ... .max)

    /// The number of keys.
    var count: Int { hashes.count }

    /// The bytes of key `number`.
    func key(_ number: Int) -> ArraySlice<UInt8> {
        arena[starts[number]..<starts[number + 1]]
    }

    /// The number of `key`, adding it when it is new.
    mutating func number(of key: UnsafeRawBufferPointer) -> (number: Int, isNew: Bool) {
        let hash = Self.hash(key, seed: seed)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(slots[i])
            if entry == 0 { break }
            let candidate = entry - 1
            if hashes[candidate] == hash && equals(candidate, key) { return (candidate, false) }
            i = (i + 1) & mask
        }
        let number = hashes.count
        arena.append(contentsOf: key)
        starts.append(arena.count)
        hashes.append(hash)
        slots[i] = Int32(number + 1)
        if hashes.count * 2 > slots.count { grow() }
        return (number, true)
    }

    /// The number of `key`, adding it when it is new.
    mutating func number(of key: [UInt8]) -> (number: Int, isNew: Bool) {
        key.withUnsafeBytes { number(of: $0) }
    }

    private func equals(_ number: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = starts[number]
        guard starts[number + 1] - start == key.count else { return false }
        if key.isEmpty { return true }
        return arena.withUnsafeBytes { memcmp($0.baseAddress! + start, key.baseAddress!, key.count) == 0 }
    }

    private mutating func grow() {
        slots = Array(repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (number, hash) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(number + 1)
        }
    }

    /// A 64-bit hash of `bytes` (eight bytes at a time, each step multiplied and folded).
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = mix(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = mix(h ^ tail)
        }
        return mix(h)
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        let product = x.multipliedFullWidth(by: 0x9FB2_1C65_1E98_DF25)
        return product.high ^ product.low
    }
}
