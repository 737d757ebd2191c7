#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Counts rows per distinct value of one or more columns and, at the end of the input, emits
/// one row per value, `VALUE,...,count`, in order of first appearance: `count-by:status`.
///
/// Values are compared as bytes. The counts are saved in every checkpoint, so an interrupted
/// and resumed job gives exactly the counts of an uninterrupted one. Memory grows with the
/// number of distinct values.
public final class CountByTransform: StatefulRowTransform {
    public static let descriptor = TransformDescriptor(
        name: "count-by", usage: "count-by:COLS",
        summary: "count rows per value; emit COLS,count at the end"
    ) { argument in try CountByTransform(columns: columnList(argument, for: "count-by")) }

    public struct State: Codable, Sendable {
        /// Each distinct key (one value per column), in order of first appearance.
        public var keys: [[ExactBytes]] = []
        /// The count for each key in ``keys``.
        public var counts: [Int] = []
    }

    let columns: [String]
    var indices: [Int] = []
    @exclusivity(unchecked) var table = ByteKeyTable()
    @exclusivity(unchecked) var scratch: [UInt8] = []
    let builder = RowBuilder()

    public var state: State {
        get { stored }
        set {
            stored = newValue
            table = ByteKeyTable()
            for key in newValue.keys { _ = table.number(of: RowKey.make(key.map(\.bytes))) }
        }
    }
    @exclusivity(unchecked) private var stored = State()

    public init(columns: [String]) {
        self.columns = columns
    }

    public func start(input: Columns) throws -> Columns {
        indices = try columns.map { try input.require($0, for: "count-by") }
        let names = indices.map { input.names[$0] }
        var countName = "count"
        while names.contains(countName) { countName += "_" }
        return Columns(names + [countName])
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        let decoded = try JSONDecoder().decode(State.self, from: Data(bytes))
        guard decoded.keys.count == decoded.counts.count,
              decoded.keys.allSatisfy({ $0.count == columns.count }),
              decoded.counts.allSatisfy({ $0 > 0 }),
              Set(decoded.keys).count == decoded.keys.count else {
            throw PipeRunError(.dataError, "count-by: the saved counts do not fit this transform")
        }
        state = decoded
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let (slot, isNew) = RowKey.with(row, indices, scratch: &scratch) { table.number(of: $0) }
        if isNew {
            stored.keys.append(indices.map { ExactBytes(Array(row[$0].bytes)) })
            stored.counts.append(1)
        } else {
            stored.counts[slot] &+= 1
        }
    }

    public func finish(emit: (Row) throws -> Void) throws {
        for (key, count) in zip(stored.keys, stored.counts) {
            builder.reset()
            for part in key { part.bytes.withUnsafeBytes { builder.appendCopy($0) } }
            builder.append(String(count))
            try builder.withRow { try emit($0) }
        }
    }
}
