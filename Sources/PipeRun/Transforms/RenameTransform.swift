/// Renames columns: `rename:OLD=NEW,...`. Rows pass unchanged.
public final class RenameTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "rename", usage: "rename:OLD=NEW,...", summary: "rename columns"
    ) { argument in try RenameTransform(argument) }

    let pairs: [(String, String)]

    public init(_ argument: String) throws {
        pairs = try argument.split(separator: ",", omittingEmptySubsequences: false).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw PipeRunError(.usage, "rename: expected OLD=NEW,..., got '\(argument)'")
            }
            return (String(parts[0]), String(parts[1]))
        }
    }

    /// Rows pass unchanged.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        var names = input.names
        for (old, new) in pairs {
            names[try input.require(old, for: "rename")] = new
        }
        return Columns(names)
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        try emit(row)
    }
}
