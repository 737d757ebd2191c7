/// Removes the named columns: `drop:email,note`.
public final class DropTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "drop", usage: "drop:COLS", summary: "remove these columns"
    ) { argument in try DropTransform(columns: columnList(argument, for: "drop")) }

    let columns: [String]
    var select = SelectTransform(indices: [])

    public init(columns: [String]) {
        self.columns = columns
    }

    /// A row's own fields make its output.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        let dropped = Set(try columns.map { try input.require($0, for: "drop") })
        let kept = (0..<input.count).filter { !dropped.contains($0) }
        guard !kept.isEmpty else {
            throw PipeRunError(.usage, "drop: no columns would be left")
        }
        select = SelectTransform(indices: kept)
        return Columns(kept.map { input.names[$0] })
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        try select.process(row, emit: emit)
    }
}
