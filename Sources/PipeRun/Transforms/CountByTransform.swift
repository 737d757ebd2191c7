/// Counts rows per distinct value of one or more columns and, at the end of the input, emits
/// one row per value, `VALUE,...,count`, in order of first appearance: `count-by:status`.
///
/// Values are compared as bytes. The counts are saved in every checkpoint, so an interrupted
/// and resumed job gives exactly the counts of an uninterrupted one. Memory grows with the
/// number of distinct values (each costs its bytes plus about 40 bytes).
public final class CountByTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "count-by", usage: "count-by:COLS",
        summary: "count rows per value; emit COLS,count at the end"
    ) { argument in try CountByTransform(columns: columnList(argument, for: "count-by")) }

    /// The largest count a saved state may hold: no input has that many rows, and adding one
    /// cannot overflow.
    static let largestCount = 1 << 62

    let columns: [String]
    var indices: [Int] = []
    @exclusivity(unchecked) var table = ByteKeyTable()
    /// The count of each key of `table`, by key number.
    @exclusivity(unchecked) var counts: [Int] = []
    @exclusivity(unchecked) var scratch: [UInt8] = []
    let builder = RowBuilder()

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

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let (number, isNew) = RowKey.with(row, indices, scratch: &scratch) { table.number(of: $0) }
        if isNew {
            counts.append(1)
        } else {
            counts[number] &+= 1
        }
    }

    public func finish(emit: (Row) throws -> Void) throws {
        for number in 0..<table.count {
            builder.reset()
            RowKey.forEachPart(of: table.key(number), columns: columns.count) { part in builder.appendCopy(part) }
            builder.append(String(counts[number]))
            try builder.withRow { try emit($0) }
        }
    }

    public func saveState() throws -> [UInt8]? {
        Self.savedState(table, counts, columns: columns.count)
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        (table, counts) = try Self.restoredState(bytes, columns: columns.count)
    }

    /// Ranges count apart; their counts add up.
    public var rangeSupport: RangeSupport { .combinable }

    /// Adds the range's counts to the earlier ones: a value the range saw first follows the
    /// earlier values, in the range's order of first appearance. Always combines (`count-by`
    /// emits nothing before the end).
    public func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination {
        // The range ran from the true state: its counts are the job's.
        guard let earlier else { return .combined(later) }
        var (table, counts) = try Self.restoredState(earlier, columns: columns.count)
        if let later {
            let (added, addedCounts) = try Self.restoredState(later, columns: columns.count)
            table.reserve(keys: table.count + added.count, bytes: table.byteCount + added.byteCount)
            counts.reserveCapacity(table.count + added.count)
            for number in 0..<added.count {
                let n = addedCounts[number]
                let (into, isNew) = added.key(number).withUnsafeBytes { table.number(of: $0) }
                if isNew {
                    counts.append(n)
                } else {
                    guard n <= Self.largestCount - counts[into] else {
                        throw PipeRunError(.dataError, "count-by: a value's count would pass \(Self.largestCount), more than a saved state may hold")
                    }
                    counts[into] += n
                }
            }
        }
        return .combined(Self.savedState(table, counts, columns: columns.count))
    }

    /// The saved state of keys for `columns` columns and their counts: the header and keys of
    /// ``KeyTableState``, then each count (LEB128).
    static func savedState(_ table: ByteKeyTable, _ counts: [Int], columns: Int) -> [UInt8] {
        var state = KeyTableState.header(columns: columns, keys: table.count)
        table.appendKeys(to: &state)
        for count in counts { appendVarint(UInt64(truncatingIfNeeded: count), to: &state) }
        return state
    }

    /// The keys and counts of a state that ``savedState(_:_:columns:)`` or an earlier version
    /// (JSON) wrote; throws a ``PipeRunError`` when it does not fit `columns` columns.
    static func restoredState(_ bytes: [UInt8], columns: Int) throws -> (table: ByteKeyTable, counts: [Int]) {
        let misfit = PipeRunError(.dataError, "count-by: the saved counts do not fit this transform")
        if bytes.first == UInt8(ascii: "{") {
            // Written by an earlier version: {"keys": [[value, ...], ...], "counts": [n, ...]}.
            struct Saved: Decodable { var keys: [[ExactBytes]]; var counts: [Int] }
            let saved = try decodeJSON(Saved.self, from: bytes, orThrow: misfit)
            guard saved.keys.count == saved.counts.count, saved.counts.allSatisfy({ $0 > 0 && $0 <= Self.largestCount }),
                  let restored = KeyTableState.table(ofJSONKeys: saved.keys, columns: columns) else { throw misfit }
            return (restored, saved.counts)
        }
        do {
            var reader = ByteReader(bytes)
            let restored = try KeyTableState.readKeys(&reader, columns: columns)
            var restoredCounts: [Int] = []
            restoredCounts.reserveCapacity(restored.count)
            for _ in 0..<restored.count {
                let n = try reader.varint()
                guard n > 0, n <= UInt64(Self.largestCount) else { throw ByteReader.Malformed() }
                restoredCounts.append(Int(n))
            }
            guard reader.isAtEnd else { throw ByteReader.Malformed() }
            return (restored, restoredCounts)
        } catch is ByteReader.Malformed {
            throw misfit
        }
    }
}
