/// Counts rows per distinct value of one or more columns and, at the end of the input, emits
/// one row per value, `VALUE,...,count`, in order of first appearance: `count-by:status`.
///
/// Its counts are saved in every checkpoint, so an interrupted and resumed job gives exactly
/// the counts of an uninterrupted one. Memory grows with the number of distinct values.
public final class CountByTransform: StatefulRowTransform {
    public static let descriptor = TransformDescriptor(
        name: "count-by", usage: "count-by:COLS",
        summary: "count rows per value; emit COLS,count at the end"
    ) { argument in try CountByTransform(columns: columnList(argument, for: "count-by")) }

    public struct State: Codable, Sendable {
        /// Each distinct key (one string per column), in order of first appearance.
        public var keys: [[String]] = []
        /// The count for each key in ``keys``.
        public var counts: [Int] = []
    }

    let columns: [String]
    var indices: [Int] = []
    var slots: [String: Int] = [:]
    let builder = RowBuilder()

    public var state: State {
        get { stored }
        set {
            stored = newValue
            slots = [:]
            for (i, key) in newValue.keys.enumerated() { slots[Self.joined(key)] = i }
        }
    }
    private var stored = State()

    public init(columns: [String]) {
        self.columns = columns
    }

    public func start(input: Columns) throws -> Columns {
        indices = try columns.map { try input.require($0, for: "count-by") }
        let names = indices.map { input.names[$0] }
        return Columns(names + [names.contains("count") ? "count_" : "count"])
    }

    private static func joined(_ key: [String]) -> String {
        key.count == 1 ? key[0] : key.joined(separator: "\u{1F}")
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let key: String
        if indices.count == 1 {
            key = row[indices[0]].string
        } else {
            key = indices.map { row[$0].string }.joined(separator: "\u{1F}")
        }
        if let slot = slots[key] {
            stored.counts[slot] += 1
        } else {
            slots[key] = stored.keys.count
            stored.keys.append(indices.map { row[$0].string })
            stored.counts.append(1)
        }
    }

    public func finish(emit: (Row) throws -> Void) throws {
        for (key, count) in zip(stored.keys, stored.counts) {
            builder.reset()
            for part in key { builder.append(part) }
            builder.append(String(count))
            try builder.withRow { try emit($0) }
        }
    }
}
