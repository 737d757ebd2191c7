/// Keeps the first row for each distinct value of the columns: `dedupe:COLS`.
///
/// Exact: every distinct key is kept in memory (its bytes plus about 80 bytes of overhead) and
/// in every checkpoint, so memory and checkpoint size grow with the number of distinct keys.
public final class DedupeTransform: StatefulRowTransform {
    public static let descriptor = TransformDescriptor(
        name: "dedupe", usage: "dedupe:COLS", summary: "keep the first row per value of COLS (stateful)"
    ) { argument in try DedupeTransform(columns: columnList(argument, for: "dedupe")) }

    public struct State: Codable, Sendable {
        /// The keys seen so far, one value per column, in order of first appearance.
        public var seen: [[ExactBytes]] = []
    }

    let columns: [String]
    var indices: [Int] = []
    @exclusivity(unchecked) var keys = ByteKeyTable()
    @exclusivity(unchecked) var scratch: [UInt8] = []
    @exclusivity(unchecked) private var stored = State()

    public var state: State {
        get { stored }
        set {
            stored = newValue
            keys = ByteKeyTable()
            for key in newValue.seen { _ = keys.number(of: RowKey.make(key.map(\.bytes))) }
        }
    }

    public init(columns: [String]) {
        self.columns = columns
    }

    public func start(input: Columns) throws -> Columns {
        indices = try columns.map { try input.require($0, for: "dedupe") }
        return input
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        guard RowKey.with(row, indices, scratch: &scratch, { keys.number(of: $0) }).isNew else { return }
        stored.seen.append(indices.map { ExactBytes(Array(row[$0].bytes)) })
        try emit(row)
    }
}
