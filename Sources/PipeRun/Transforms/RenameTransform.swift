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

/// Keeps a deterministic sample of rows: `sample:RATE` or `sample:RATE:SEED` (RATE from 0 to
/// 1). Whether a row is kept depends only on the seed and the row's input offset, so an
/// interrupted and resumed job keeps exactly the same rows.
public final class SampleTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "sample", usage: "sample:RATE[:SEED]", summary: "keep a deterministic fraction of rows"
    ) { argument in try SampleTransform(argument) }

    let threshold: UInt64
    let seed: UInt64

    public init(_ argument: String) throws {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let rate = Double(parts[0]), rate >= 0, rate <= 1 else {
            throw PipeRunError(.usage, "sample: expected RATE (0 to 1) and an optional :SEED, got '\(argument)'")
        }
        guard parts.count == 1 || UInt64(parts[1]) != nil else {
            throw PipeRunError(.usage, "sample: the seed must be a whole number, got '\(parts[1])'")
        }
        seed = parts.count == 2 ? UInt64(parts[1])! : 0
        threshold = rate >= 1 ? .max : UInt64(rate * 18_446_744_073_709_551_615.0)
    }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        var z = seed &+ UInt64(bitPattern: row.offset) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        if threshold == .max || z < threshold { try emit(row) }
    }
}

/// Stops the job cleanly after N output rows: `head:N`. Its count is saved in checkpoints.
public final class HeadTransform: StatefulRowTransform {
    public static let descriptor = TransformDescriptor(
        name: "head", usage: "head:N", summary: "stop the job after N rows (stateful)"
    ) { argument in
        guard let n = Int(argument), n >= 0 else {
            throw PipeRunError(.usage, "head: expected a row count, got '\(argument)'")
        }
        return HeadTransform(limit: n)
    }

    public struct State: Codable, Sendable {
        public var emitted = 0
    }

    let limit: Int
    public var state = State()

    public init(limit: Int) {
        self.limit = limit
    }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        if state.emitted >= limit { throw EndOfJob() }
        try emit(row)
        state.emitted += 1
        if state.emitted >= limit { throw EndOfJob() }
    }

    public func finish(emit: (Row) throws -> Void) throws {
        if state.emitted >= limit { throw EndOfJob() }
    }
}
