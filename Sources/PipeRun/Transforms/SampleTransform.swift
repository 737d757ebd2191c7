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

    /// Whether a row is kept depends on its input offset alone, which every range keeps true.
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns { input }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        var z = seed &+ UInt64(bitPattern: row.offset) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        if threshold == .max || z < threshold { try emit(row) }
    }
}
