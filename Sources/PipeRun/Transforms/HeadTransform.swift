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

    /// A range's count adds to the earlier one while the job does not end inside the range.
    public var rangeSupport: RangeSupport { .combinable }

    /// Adds the range's count to the earlier one while the sum stays under the limit. When the
    /// range reaches the limit from a count above zero, a run in input order ends earlier in it
    /// than the range did: the range runs again from the earlier count, and stops at the right row.
    public func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination {
        let before = try earlier.map(Self.emitted(in:)) ?? 0
        // The range ran from the true state.
        if before == 0 { return .combined(later) }
        let inRange = try later.map(Self.emitted(in:)) ?? 0
        guard before < limit, inRange < limit - before else { return .runAgain }
        return .combined(try Self.savedState(of: State(emitted: before + inRange)))
    }

    /// The count of a saved state.
    private static func emitted(in bytes: [UInt8]) throws -> Int {
        let emitted = try? restoredState(from: bytes).emitted
        guard let emitted, emitted >= 0 else {
            throw PipeRunError(.dataError, "head: the saved count does not fit this transform")
        }
        return emitted
    }
}
