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
