#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

    /// Calls `body` with each column's bytes of a key made for `columns` columns: the key itself
    /// for one column. Returns false (after calling `body` for the parts it could read) when the
    /// key does not split into exactly `columns` parts.
    @discardableResult
    static func forEachPart(of key: ArraySlice<UInt8>, columns: Int,
                            _ body: (UnsafeRawBufferPointer) -> Void = { _ in }) -> Bool {
        key.withUnsafeBytes { bytes in
            if columns == 1 {
                body(bytes)
                return true
            }
            var at = 0
            for _ in 0..<columns {
                guard bytes.count - at >= 4 else { return false }
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                at += 4
                guard bytes.count - at >= length else { return false }
                body(UnsafeRawBufferPointer(rebasing: bytes[at..<at + length]))
                at += length
            }
            return at == bytes.count
        }
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

/// The saved state of `count-by` and `dedupe`: a byte that no JSON text starts with (earlier
/// versions saved JSON) and that is never UTF-8 (so the checkpoint always holds it as base64), a
/// tag and version, the number of columns and of keys (LEB128), then
/// the keys as ``ByteKeyTable/appendKeys(to:)`` writes them; `count-by` adds the counts.
enum KeyTableState {
    static let tag: [UInt8] = [0xFF] + Array("keys1".utf8)

    static func header(columns: Int, keys: Int) -> [UInt8] {
        var out = tag
        appendVarint(UInt64(columns), to: &out)
        appendVarint(UInt64(keys), to: &out)
        return out
    }

    /// Reads the header and the keys of a state for `columns` columns, leaving `reader` after
    /// them. Throws ``ByteReader/Malformed`` when they do not fit.
    static func readKeys(_ reader: inout ByteReader, columns: Int) throws -> ByteKeyTable {
        try reader.expect(tag)
        guard try reader.varint() == UInt64(columns) else { throw ByteReader.Malformed() }
        let count = try reader.varint()
        guard count <= UInt64(reader.remaining) else { throw ByteReader.Malformed() }
        let table = try ByteKeyTable(keysFrom: &reader, count: Int(count))
        let split = columns == 1 || (0..<table.count).allSatisfy { RowKey.forEachPart(of: table.key($0), columns: columns) }
        guard split else { throw ByteReader.Malformed() }
        return table
    }

    /// The table of keys that an earlier version saved as JSON (one array of column values per
    /// key), or nil when they do not fit `columns` columns or repeat.
    static func table(ofJSONKeys keys: [[ExactBytes]], columns: Int) -> ByteKeyTable? {
        var table = ByteKeyTable()
        for key in keys {
            guard key.count == columns, table.number(of: RowKey.make(key.map(\.bytes))).isNew else { return nil }
        }
        return table
    }
}

/// Decodes JSON state bytes, for states that earlier versions saved as JSON, throwing `misfit`
/// when they do not decode.
func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8], orThrow misfit: PipeRunError) throws -> T {
    // (Not named `error`: in the catch clause that name is the decoder's error.)
    do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch { throw misfit }
}
