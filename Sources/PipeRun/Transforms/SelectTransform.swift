/// Keeps the named columns, in the order given: `select:id,city,amount`.
public final class SelectTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "select", usage: "select:COLS",
        summary: "keep these columns, in this order (names or numbers)"
    ) { argument in try SelectTransform(columns: columnList(argument, for: "select")) }

    let columns: [String]
    var indices: [Int] = []
    let fields: UnsafeMutablePointer<Field>

    public init(columns: [String]) {
        self.columns = columns
        fields = .allocate(capacity: columns.count)
        fields.initialize(repeating: .empty, count: columns.count)
    }

    init(indices: [Int]) {
        columns = []
        self.indices = indices
        fields = .allocate(capacity: indices.count)
        fields.initialize(repeating: .empty, count: indices.count)
    }

    deinit { fields.deallocate() }

    /// A row's own fields make its output.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        indices = try columns.map { try input.require($0, for: "select") }
        return Columns(indices.map { input.names[$0] })
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let n = indices.count
        indices.withUnsafeBufferPointer { idx in
            for i in 0..<n { fields[i] = row[idx[i]] }
        }
        try emit(Row(fields: UnsafeBufferPointer(start: fields, count: n), line: row.line, offset: row.offset))
    }
}
