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
        Self.savedState(keys, columns: columns.count)
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        keys = try Self.restoredState(bytes, columns: columns.count)
    }

    /// A range that meets only keys new to the job emitted what a run in input order emits.
    public var rangeSupport: RangeSupport { .combinable }

    /// Combines when no key the range saw is among the earlier ones: the range's first rows
    /// were then first for the job too, and its keys follow the earlier ones. Otherwise the
    /// range kept a row that a run in input order drops, and runs again.
    public func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination {
        // The range ran from the true state.
        guard let earlier else { return .combined(later) }
        var table = try Self.restoredState(earlier, columns: columns.count)
        if let later {
            let added = try Self.restoredState(later, columns: columns.count)
            table.reserve(keys: table.count + added.count, bytes: table.byteCount + added.byteCount)
            for number in 0..<added.count {
                guard added.key(number).withUnsafeBytes({ table.number(of: $0).isNew }) else { return .runAgain }
            }
        }
        return .combined(Self.savedState(table, columns: columns.count))
    }

    /// The saved state of keys for `columns` columns: a ``KeyTableState``.
    static func savedState(_ keys: ByteKeyTable, columns: Int) -> [UInt8] {
        var state = KeyTableState.header(columns: columns, keys: keys.count)
        keys.appendKeys(to: &state)
        return state
    }

    /// The keys of a state that ``savedState(_:columns:)`` or an earlier version (JSON) wrote;
    /// throws a ``PipeRunError`` when it does not fit `columns` columns.
    static func restoredState(_ bytes: [UInt8], columns: Int) throws -> ByteKeyTable {
        let misfit = PipeRunError(.dataError, "dedupe: the saved keys do not fit this transform")
        if bytes.first == UInt8(ascii: "{") {
            // Written by an earlier version: {"seen": [[value, ...], ...]}.
            struct Saved: Decodable { var seen: [[ExactBytes]] }
            let saved = try decodeJSON(Saved.self, from: bytes, orThrow: misfit)
            guard let table = KeyTableState.table(ofJSONKeys: saved.seen, columns: columns) else { throw misfit }
            return table
        }
        do {
            var reader = ByteReader(bytes)
            let table = try KeyTableState.readKeys(&reader, columns: columns)
            guard reader.isAtEnd else { throw ByteReader.Malformed() }
            return table
        } catch is ByteReader.Malformed {
            throw misfit
        }
    }
}
