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

    /// Every row sleeps the same and passes unchanged; nothing is kept between rows.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        var request = timespec(tv_sec: nanoseconds / 1_000_000_000, tv_nsec: nanoseconds % 1_000_000_000)
        var remaining = timespec()
        // A signal cuts the sleep short; sleep the rest so the row really takes this long.
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        try emit(row)
    }
}
