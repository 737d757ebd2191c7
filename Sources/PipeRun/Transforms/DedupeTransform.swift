/// Keeps the first row for each distinct value of the columns: `dedupe:COLS`.
///
/// Exact: every distinct key is kept in memory (its bytes plus about 40 bytes of table) and in
/// every checkpoint (its bytes plus a length byte, base64-encoded), so memory and checkpoint
/// size grow with the number of distinct keys.
public final class DedupeTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "dedupe", usage: "dedupe:COLS", summary: "keep the first row per value of COLS (stateful)"
    ) { argument in try DedupeTransform(columns: columnList(argument, for: "dedupe")) }

    let columns: [String]
    var indices: [Int] = []
    @exclusivity(unchecked) var keys = ByteKeyTable()
    @exclusivity(unchecked) var scratch: [UInt8] = []

    public init(columns: [String]) {
        self.columns = columns
    }

    public func start(input: Columns) throws -> Columns {
        indices = try columns.map { try input.require($0, for: "dedupe") }
        return input
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        guard RowKey.with(row, indices, scratch: &scratch, { keys.number(of: $0) }).isNew else { return }
        try emit(row)
    }

    public func saveState() throws -> [UInt8]? {
        var state = KeyTableState.header(columns: columns.count, keys: keys.count)
        keys.appendKeys(to: &state)
        return state
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        let misfit = PipeRunError(.dataError, "dedupe: the saved keys do not fit this transform")
        if bytes.first == UInt8(ascii: "{") {
            // Written by an earlier version: {"seen": [[value, ...], ...]}.
            struct Saved: Decodable { var seen: [[ExactBytes]] }
            let saved = try decodeJSON(Saved.self, from: bytes, orThrow: misfit)
            guard let table = KeyTableState.table(ofJSONKeys: saved.seen, columns: columns.count) else { throw misfit }
            keys = table
            return
        }
        do {
            var reader = ByteReader(bytes)
            let table = try KeyTableState.readKeys(&reader, columns: columns.count)
            guard reader.isAtEnd else { throw ByteReader.Malformed() }
            keys = table
        } catch is ByteReader.Malformed {
            throw misfit
        }
    }
}
