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

    init() {}

    /// The number of keys.
    var count: Int { hashes.count }

    /// The number of bytes of all keys together.
    var byteCount: Int { arena.count }

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
        if hashes.count * 2 > slots.count { rehash(size: slots.count * 2) }
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

    private mutating func rehash(size: Int) {
        slots = Array(repeating: 0, count: size)
        let mask = slots.count - 1
        for (number, hash) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(number + 1)
        }
    }

    /// Makes room for `count` keys of `bytes` bytes in all without growing on the way.
    mutating func reserve(keys count: Int, bytes: Int) {
        arena.reserveCapacity(bytes)
        starts.reserveCapacity(count + 1)
        hashes.reserveCapacity(count)
        var size = slots.count
        while count * 2 > size { size *= 2 }
        if size > slots.count { rehash(size: size) }
    }

    /// Appends every key, in number order, as a variable-length length (LEB128) followed by its
    /// bytes: what ``init(keysFrom:count:)`` reads back.
    func appendKeys(to out: inout [UInt8]) {
        out.reserveCapacity(out.count + arena.count + count * 2)
        for number in 0..<count {
            appendVarint(UInt64(starts[number + 1] - starts[number]), to: &out)
            out.append(contentsOf: key(number))
        }
    }

    /// Reads `count` keys written by ``appendKeys(to:)`` from `reader`, numbering them in order.
    /// Throws when the bytes end early or hold the same key twice.
    init(keysFrom reader: inout ByteReader, count: Int) throws {
        guard count >= 0, count <= reader.remaining else { throw ByteReader.Malformed() }
        self.init()
        reserve(keys: count, bytes: reader.remaining - count)
        for _ in 0..<count {
            let length = try reader.varint()
            guard length <= UInt64(reader.remaining) else { throw ByteReader.Malformed() }
            let isNew = try reader.bytes(Int(length)) { number(of: $0).isNew }
            guard isNew else { throw ByteReader.Malformed() }
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

/// Appends `value` as LEB128: seven bits per byte, low bits first, the high bit set on all but
/// the last byte.
func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

/// Reads what ``appendVarint(_:to:)`` and raw byte runs wrote, throwing instead of trapping
/// when the bytes end early or do not fit (a damaged or edited checkpoint).
struct ByteReader {
    struct Malformed: Error {}

    private let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position == bytes.count }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count, shift < 64 else { throw Malformed() }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    /// Calls `body` with the next `count` bytes and moves past them.
    mutating func bytes<R>(_ count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard count >= 0, count <= remaining else { throw Malformed() }
        defer { position += count }
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[position..<position + count])) }
    }

    /// Checks that the next bytes are `expected` and moves past them.
    mutating func expect(_ expected: [UInt8]) throws {
        let same = try bytes(expected.count) { $0.elementsEqual(expected) }
        guard same else { throw Malformed() }
    }
}
