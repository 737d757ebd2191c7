/// Replaces every match of a regular expression in a column: `replace:COL/REGEX/TEMPLATE`.
/// In the template, `\0` is the whole match and `\1`...`\9` its groups. The template is what
/// follows the last `/`.
public final class ReplaceTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "replace", usage: "replace:COL/REGEX/TEMPLATE", summary: "replace matches in COL (\\1 for groups)"
    ) { argument in try ReplaceTransform(argument) }

    let column: String
    let pattern: Pattern
    let template: [UInt8]
    var index = 0
    var fields: [Field] = []
    var value: [UInt8] = []

    public init(_ argument: String) throws {
        guard let first = argument.firstIndex(of: "/"), let last = argument.lastIndex(of: "/"), first < last,
              first > argument.startIndex else {
            throw PipeRunError(.usage, "replace: expected COL/REGEX/TEMPLATE, got '\(argument)'")
        }
        column = String(argument[..<first])
        let regex = String(argument[argument.index(after: first)..<last])
        guard !regex.isEmpty else { throw PipeRunError(.usage, "replace: the regular expression is empty") }
        pattern = try Pattern(regex, for: "replace", captures: true)
        template = Array(argument[argument.index(after: last)...].utf8)
    }

    /// A row's own field makes its replacement.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        index = try input.require(column, for: "replace")
        return input
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let field = row[index]
        value.removeAll(keepingCapacity: true)
        var at = 0
        var changed = false
        pattern.forEachMatch(in: field.bytes) { start, end, groups in
            changed = true
            value.append(contentsOf: UnsafeRawBufferPointer(rebasing: field.bytes[at..<start]))
            var t = 0
            while t < template.count {
                let c = template[t]
                if c == UInt8(ascii: "\\"), t + 1 < template.count, template[t + 1] >= 48, template[t + 1] <= 57 {
                    let g = Int(template[t + 1] - 48)
                    if g < groups.count, groups[g].0 >= 0 {
                        value.append(contentsOf: UnsafeRawBufferPointer(rebasing: field.bytes[groups[g].0..<groups[g].1]))
                    }
                    t += 2
                } else {
                    value.append(c)
                    t += 1
                }
            }
            if end == start {
                // An empty match: keep the next byte and move past it.
                if start < field.count { value.append(field.bytes[start]) }
                at = start + 1
            } else {
                at = end
            }
            return at
        }
        guard changed else { return try emit(row) }
        if at < field.count { value.append(contentsOf: UnsafeRawBufferPointer(rebasing: field.bytes[at...])) }
        fields.removeAll(keepingCapacity: true)
        for i in 0..<row.count { fields.append(row[i]) }
        try value.withUnsafeBytes { bytes in
            if index < fields.count { fields[index] = Field(bytes) }
            try fields.withUnsafeBufferPointer { try emit(Row(fields: $0, line: row.line, offset: row.offset)) }
        }
    }
}
