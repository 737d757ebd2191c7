/// Keeps the rows whose raw input record matches a regular expression anywhere: `grep:REGEX`.
/// For a row a transform built (no raw record), its fields joined by commas are searched.
public final class GrepTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "grep", usage: "grep:REGEX", summary: "keep rows whose raw record matches (POSIX ERE)"
    ) { argument in try GrepTransform(pattern: argument) }

    let pattern: Pattern
    var joined: [UInt8] = []

    public init(pattern: String) throws {
        guard !pattern.isEmpty else { throw PipeRunError(.usage, "grep: expected a regular expression") }
        self.pattern = try Pattern(pattern, for: "grep")
    }

    /// Whether a row is kept depends on its own record alone.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        if var raw = row.raw {
            // The record without its line end, so that `$` matches at the end of a line.
            if raw.last == 10 { raw = UnsafeRawBufferPointer(rebasing: raw.dropLast()) }
            if raw.last == 13 { raw = UnsafeRawBufferPointer(rebasing: raw.dropLast()) }
            if pattern.matches(raw) { try emit(row) }
            return
        }
        joined.removeAll(keepingCapacity: true)
        for i in 0..<row.count {
            if i > 0 { joined.append(UInt8(ascii: ",")) }
            joined.append(contentsOf: row[i].bytes)
        }
        if joined.withUnsafeBytes({ pattern.matches($0) }) { try emit(row) }
    }
}
