/// The bytes that identify a row by some of its columns, for `count-by` and `dedupe`: one
/// column's bytes as they are; several columns each as its length, then its bytes, so that no
/// two different keys collide.
enum RowKey {
    /// Replaces `key` with the key of `row` for the columns at `indices`.
    static func make(_ row: Row, _ indices: [Int], into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        if indices.count == 1 {
            key.append(contentsOf: row[indices[0]].bytes)
            return
        }
        for i in indices {
            let f = row[i]
            withUnsafeBytes(of: UInt32(f.count).littleEndian) { key.append(contentsOf: $0) }
            key.append(contentsOf: f.bytes)
        }
    }

    /// Calls `body` with the key of `row` for the columns at `indices`: a view of the field
    /// itself for one column, else built in `scratch`.
    @inline(__always)
    static func with<R>(_ row: Row, _ indices: [Int], scratch: inout [UInt8],
                        _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if indices.count == 1 { return body(row[indices[0]].bytes) }
        make(row, indices, into: &scratch)
        return scratch.withUnsafeBytes(body)
    }

    /// The key of values saved in a checkpoint.
    static func make(_ parts: [[UInt8]]) -> [UInt8] {
        if parts.count == 1 { return parts[0] }
        var key: [UInt8] = []
        for part in parts {
            withUnsafeBytes(of: UInt32(part.count).littleEndian) { key.append(contentsOf: $0) }
            key.append(contentsOf: part)
        }
        return key
    }
}
