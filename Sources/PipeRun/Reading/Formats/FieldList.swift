/// The fields of the record being parsed, in storage the reader reuses for every record.
///
/// Appending past ``limit`` keeps the record's parse going (to find its end) but overwrites
/// the last field, and marks the record as having too many fields: this bounds the memory a
/// record of nothing but delimiters takes. The reader owns the storage and deallocates it.
struct FieldList {
    private(set) var base: UnsafeMutablePointer<Field>
    private(set) var capacity: Int
    /// The most fields a record may have.
    let limit: Int
    private(set) var count = 0
    /// Whether the record has more than ``limit`` fields.
    private(set) var overflowed = false

    init(capacity: Int, limit: Int) {
        self.limit = max(limit, 1)
        self.capacity = max(min(capacity, self.limit), 1)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() {
        base.deallocate()
    }

    /// Empties the list for the next record.
    @inline(__always)
    mutating func removeAll() {
        count = 0
        overflowed = false
    }

    /// Appends the field of `count` bytes at `start`.
    @inline(__always)
    mutating func append(_ start: UnsafeMutablePointer<UInt8>, count fieldCount: Int) {
        if count == capacity {
            if count == limit {
                // The next field takes the last one's slot.
                overflowed = true
                count -= 1
            } else {
                // (Values in and out, not a mutating call: a parser's list then stays in registers.)
                (base, capacity) = FieldList.grown(base, count: count, capacity: capacity, limit: limit)
            }
        }
        (base + count).initialize(to: Field(UnsafeRawBufferPointer(start: start, count: fieldCount)))
        count += 1
    }

    /// Storage of twice `capacity` fields, up to `limit`, with the `count` fields of `base`
    /// moved to it (`base` is deallocated).
    private static func grown(_ base: UnsafeMutablePointer<Field>, count: Int, capacity: Int,
                              limit: Int) -> (UnsafeMutablePointer<Field>, Int) {
        let newCapacity = min(capacity * 2, limit)
        let grown = UnsafeMutablePointer<Field>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: base, count: count)
        base.deallocate()
        return (grown, newCapacity)
    }
}
