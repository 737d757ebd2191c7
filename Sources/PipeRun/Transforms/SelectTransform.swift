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

/// Sleeps for a while on every row: a deliberately slow transform, for testing interruptions
/// and the grace deadline.
public final class DelayTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "delay", usage: "delay:MS",
        summary: "sleep MS milliseconds per row (for testing)"
    ) { argument in
        guard let ms = Double(argument), ms >= 0, ms < 86_400_000 else {
            throw PipeRunError(.usage, "delay: expected milliseconds, got '\(argument)'")
        }
        return DelayTransform(milliseconds: ms)
    }

    let nanoseconds: Int

    public init(milliseconds: Double) {
        nanoseconds = Int(milliseconds * 1_000_000)
    }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        var request = timespec(tv_sec: nanoseconds / 1_000_000_000, tv_nsec: nanoseconds % 1_000_000_000)
        var remaining = timespec()
        // A signal cuts the sleep short; sleep the rest so the row really takes this long.
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        try emit(row)
    }
}
