import Testing
@testable import PipeRun

/// Ranges of the input run apart, each through a fresh chain, then combined in input order as
/// the driver does for `--jobs`: the rows emitted, the rows the job's finish emits and the
/// states at the end are exactly those of one run in input order.
@Suite struct RangeCombineTests {
    /// One input record: its fields and where it starts.
    struct Record {
        var fields: [[UInt8]]
        var line: Int64
        var offset: Int64
    }

    static let input = Columns(["a", "b", "c"])

    /// `count` records. Column `a` is mostly distinct (every fifth record repeats an earlier
    /// one), `b` has four values, `c` a few short byte strings, some empty and some not UTF-8.
    static func records(_ count: Int, seed: UInt64) -> [Record] {
        var rng = SplitMix(seed: seed)
        var offset: Int64 = 0
        return (0..<count).map { i in
            let r = rng.next()
            let id = i > 0 && r % 5 == 0 ? Int(rng.next() % UInt64(i)) : i
            let a = Array("id\(id)".utf8)
            let b: [UInt8] = [Array("paid".utf8), Array("refunded".utf8), [], [0xC3, 0xA9]][Int((r >> 8) % 4)]
            let c: [UInt8] = (0..<Int((r >> 16) % 3)).map { _ in [0x61, 0x62, 0xFF, 0x2C][Int(rng.next() % 4)] }
            defer { offset += Int64(a.count + b.count + c.count + 3) }
            return Record(fields: [a, b, c], line: Int64(i + 2), offset: offset)
        }
    }

    /// A chain of transforms made from specs by the registry and started with ``input``, as a
    /// range (or the job) has it.
    final class Chain {
        let transforms: [any RowTransform]
        private(set) var emitted: [[[UInt8]]] = []
        private(set) var ended = false

        /// A chain, with each stage's state restored where `states` holds one.
        init(_ specs: [String], restoring states: [[UInt8]?]? = nil) throws {
            transforms = try specs.map { try TransformRegistry.builtIn.make($0) }
            var columns = RangeCombineTests.input
            for t in transforms { columns = try t.start(input: columns) }
            for (t, state) in zip(transforms, states ?? []) {
                if let state { try t.restoreState(state) }
            }
        }

        /// Feeds `records` in order, up to the one after which a stage ends the job.
        func run(_ records: some Sequence<Record>) throws {
            let builder = RowBuilder()
            for record in records where !ended {
                builder.reset()
                for field in record.fields { field.withUnsafeBytes { builder.appendCopy($0) } }
                do {
                    try builder.withRow(line: record.line, offset: record.offset) { try push($0, into: 0) }
                } catch is EndOfJob {
                    ended = true
                }
            }
        }

        /// Every stage's finish, in chain order, as at the end of a job.
        func finish() throws {
            for stage in transforms.indices {
                do {
                    try transforms[stage].finish { try push($0, into: stage + 1) }
                } catch is EndOfJob {
                    continue
                }
            }
        }

        func states() throws -> [[UInt8]?] {
            try transforms.map { try $0.saveState() }
        }

        private func push(_ row: Row, into stage: Int) throws {
            if stage == transforms.count {
                emitted.append((0..<row.count).map { Array(row[$0].bytes) })
                return
            }
            try transforms[stage].process(row) { try push($0, into: stage + 1) }
        }
    }

    /// What a job gives: the rows emitted, finish included, and the states at the end.
    struct Outcome: Equatable {
        var rows: [[[UInt8]]]
        var states: [[UInt8]?]
    }

    /// One run in input order.
    static func inOrder(_ specs: [String], _ records: [Record]) throws -> Outcome {
        let chain = try Chain(specs)
        try chain.run(records)
        let states = try chain.states()
        try chain.finish()
        return Outcome(rows: chain.emitted, states: states)
    }

    /// How many ranges combined, and how many ran again.
    struct Tally {
        var combined = 0
        var ranAgain = 0
    }

    /// The ranges between `cuts` (sorted offsets into `records`, 0 to its count) run apart from
    /// fresh states; then, in input order, each range's stages combine in chain order, or the
    /// range runs again from the states before it. The job's finish runs on a chain restored
    /// with the final states.
    static func inRanges(_ specs: [String], _ records: [Record], cuts: [Int],
                         tally: inout Tally) throws -> Outcome {
        let bounds = [0] + cuts + [records.count]
        let ranges = (0..<bounds.count - 1).map { records[bounds[$0]..<bounds[$0 + 1]] }
        let apart = try ranges.map { range in
            let chain = try Chain(specs)
            try chain.run(range)
            return chain
        }
        var states: [[UInt8]?] = Array(repeating: nil, count: specs.count)
        var rows: [[[UInt8]]] = []
        for (range, chain) in zip(ranges, apart) {
            let later = try chain.states()
            var combined: [[UInt8]?] = []
            stages: for (stage, t) in chain.transforms.enumerated() {
                switch t.rangeSupport {
                case .rowLocal:
                    #expect(later[stage] == nil, "a row-local stage saved a state: \(specs[stage])")
                    combined.append(nil)
                case .combinable:
                    let answer = try t.combine(earlier: states[stage], later: later[stage])
                    #expect(try t.saveState() == later[stage], "combine changed the state of \(specs[stage])")
                    guard case .combined(let state) = answer else { break stages }
                    combined.append(state)
                case .none:
                    Issue.record("\(specs[stage]) cannot run in ranges")
                    break stages
                }
            }
            let ended: Bool
            if combined.count == specs.count {
                tally.combined += 1
                rows += chain.emitted
                states = combined
                ended = chain.ended
            } else {
                tally.ranAgain += 1
                let again = try Chain(specs, restoring: states)
                try again.run(range)
                rows += again.emitted
                states = try again.states()
                ended = again.ended
            }
            // The job ended inside this range: the ranges after it are not the job's.
            if ended { break }
        }
        let last = try Chain(specs, restoring: states)
        try last.finish()
        return Outcome(rows: rows + last.emitted, states: states)
    }

    /// Ways to cut `count` records into 2 to 4 consecutive ranges: empty ones at either end and
    /// in the middle, single records, even thirds, random cuts, and cuts at and next to each of
    /// `around`.
    static func cutSets(_ count: Int, around: [Int] = [], seed: UInt64) -> [[Int]] {
        let n = count
        var sets: [[Int]] = [[0], [n], [1], [n - 1], [n / 2], [0, 0], [0, n], [n / 3, n / 3],
                             [n / 3, 2 * n / 3], [1, 2, n - 1], [n / 4, n / 2, 3 * n / 4], [0, n / 2, n]]
        var rng = SplitMix(seed: seed)
        for k in [1, 2, 3, 3, 3] {
            sets.append((0..<k).map { _ in Int(rng.next() % UInt64(n + 1)) }.sorted())
        }
        for p in around {
            for q in [p - 1, p, p + 1] where q >= 0 && q <= n {
                sets.append([q])
                sets.append([q / 2, q])
                sets.append([q, min(q + 1, n), n])
            }
        }
        return sets.map { $0.map { min(max($0, 0), n) } }
    }

    // MARK: Whole jobs

    static let chains: [[String]] = [
        ["count-by:b"], ["count-by:a,c"], ["count-by:c,b,a"],
        ["dedupe:a"], ["dedupe:b"], ["dedupe:a,c"],
        ["head:0"], ["head:1"], ["head:37"], ["head:200"], ["head:5000"],
        ["dedupe:a", "count-by:b"], ["dedupe:b,c", "count-by:c"],
        ["filter:b!=paid", "head:45"], ["select:c,a", "grep:id1", "head:9"],
        ["filter:b=refunded", "dedupe:c", "head:3"],
    ]

    @Test(arguments: chains)
    func rangesCombineToTheRunInInputOrder(specs: [String]) throws {
        let records = Self.records(240, seed: 61)
        let whole = try Self.inOrder(specs, records)
        var tally = Tally()
        for cuts in Self.cutSets(records.count, seed: 62) {
            let ranged = try Self.inRanges(specs, records, cuts: cuts, tally: &tally)
            #expect(ranged == whole, "\(specs) cut at \(cuts)")
        }
        // Both answers are met where a range can get them; count-by always combines, and so
        // does head when the job ends in the first range that emits or never ends.
        if specs.allSatisfy({ $0.hasPrefix("count-by:") }) || ["head:0", "head:1", "head:5000"].contains(specs[0]) {
            #expect(tally.ranAgain == 0, "\(specs) ran a range again")
        } else {
            #expect(tally.ranAgain > 0, "\(specs) never ran a range again")
        }
        #expect(tally.combined > 0)
    }

    /// A range that ends right at the limit, one that begins with the row that reaches it, and
    /// the rows around them.
    @Test(arguments: [1, 2, 10, 45, 77])
    func headWithRangeBoundsAtTheLimit(limit: Int) throws {
        let specs = ["filter:b!=paid", "head:\(limit)"]
        let records = Self.records(200, seed: 63)
        let whole = try Self.inOrder(specs, records)
        #expect(whole.rows.count == limit)
        // The record after which the job ends, and the one where a later range reaches half.
        let ending = try Self.recordsUntil(specs, records, emitted: limit)
        let half = try Self.recordsUntil(specs, records, emitted: max(limit / 2, 1))
        var tally = Tally()
        for cuts in Self.cutSets(records.count, around: [ending, half], seed: UInt64(limit)) {
            #expect(try Self.inRanges(specs, records, cuts: cuts, tally: &tally) == whole, "cut at \(cuts)")
        }
        #expect(tally.combined > 0)
        // With a limit of 1 the job has ended by the time an earlier count is above zero.
        #expect(limit == 1 ? tally.ranAgain == 0 : tally.ranAgain > 0)
    }

    /// The number of records after which a run in input order has emitted `emitted` rows.
    static func recordsUntil(_ specs: [String], _ records: [Record], emitted: Int) throws -> Int {
        let chain = try Chain(specs)
        for (i, record) in records.enumerated() {
            try chain.run([record])
            if chain.emitted.count >= emitted { return i + 1 }
        }
        return records.count
    }

    /// Keys met in several ranges: every range after the first meets earlier keys.
    @Test func dedupeWithDuplicatesAcrossRanges() throws {
        let records = (0..<60).map { i in
            Record(fields: [Array("k\(i % 7)".utf8), Array("\(i)".utf8), []], line: Int64(i + 2), offset: Int64(i * 10))
        }
        for specs in [["dedupe:a"], ["dedupe:a", "count-by:a"], ["dedupe:a,c", "head:5"]] {
            let whole = try Self.inOrder(specs, records)
            var tally = Tally()
            for cuts in Self.cutSets(records.count, around: [7], seed: 64) {
                #expect(try Self.inRanges(specs, records, cuts: cuts, tally: &tally) == whole, "\(specs) cut at \(cuts)")
            }
            #expect(tally.ranAgain > 0)
        }
    }

    // MARK: combine itself

    /// A started transform made from `spec`, fed `records`.
    static func fed(_ spec: String, _ records: [Record]) throws -> any RowTransform {
        let chain = try Chain([spec])
        try chain.run(records)
        return chain.transforms[0]
    }

    static func keyRecords(_ keys: [String]) -> [Record] {
        keys.enumerated().map { i, key in Record(fields: [Array(key.utf8), [], []], line: Int64(i + 2), offset: Int64(i)) }
    }

    @Test func countByAddsCountsInOrderOfFirstAppearance() throws {
        let earlier = try Self.fed("count-by:a", Self.keyRecords(["x", "y", "x", "z"])).saveState()
        let range = try Self.fed("count-by:a", Self.keyRecords(["w", "y", "v", "w"]))
        let whole = try Self.fed("count-by:a", Self.keyRecords(["x", "y", "x", "z", "w", "y", "v", "w"])).saveState()
        #expect(try range.combine(earlier: earlier, later: range.saveState()) == .combined(whole))
        #expect(try range.combine(earlier: nil, later: range.saveState()) == .combined(range.saveState()))
        #expect(try range.combine(earlier: earlier, later: nil) == .combined(earlier))
        let fresh = try Self.fed("count-by:a", [])
        #expect(try fresh.combine(earlier: earlier, later: fresh.saveState()) == .combined(earlier))
        // The state of an earlier version (JSON) combines into today's format.
        let old = Array(#"{"counts":[2,1,1],"keys":[["x"],["y"],["z"]]}"#.utf8)
        #expect(try range.combine(earlier: old, later: range.saveState()) == .combined(whole))
    }

    @Test func countByRefusesASumPastTheLargestCount() throws {
        var full = KeyTableState.header(columns: 1, keys: 1)
        full += [1, 0x78]
        appendVarint(UInt64(CountByTransform.largestCount), to: &full)
        let t = try Self.fed("count-by:a", [])
        try t.restoreState(full)
        let one = try Self.fed("count-by:a", Self.keyRecords(["x"])).saveState()
        #expect(throws: PipeRunError.self) { try t.combine(earlier: full, later: one) }
        #expect(throws: PipeRunError.self) { try t.combine(earlier: full, later: full) }
        // Another key is no sum.
        let other = try Self.fed("count-by:a", Self.keyRecords(["y"])).saveState()
        guard case .combined(let state) = try t.combine(earlier: full, later: other) else {
            Issue.record("a new key did not combine")
            return
        }
        let restored = try Self.fed("count-by:a", [])
        try restored.restoreState(try #require(state))
        #expect((restored as? CountByTransform)?.counts == [CountByTransform.largestCount, 1])
        // A state that does not fit.
        #expect(throws: PipeRunError.self) { try t.combine(earlier: [0xFF, 1, 2], later: one) }
    }

    @Test func dedupeCombinesOnlyRangesOfNewKeys() throws {
        let earlier = try Self.fed("dedupe:a", Self.keyRecords(["x", "y"])).saveState()
        let new = try Self.fed("dedupe:a", Self.keyRecords(["z", "w", "z"]))
        let whole = try Self.fed("dedupe:a", Self.keyRecords(["x", "y", "z", "w"])).saveState()
        #expect(try new.combine(earlier: earlier, later: new.saveState()) == .combined(whole))
        let seen = try Self.fed("dedupe:a", Self.keyRecords(["z", "y"]))
        #expect(try seen.combine(earlier: earlier, later: seen.saveState()) == .runAgain)
        #expect(try seen.combine(earlier: nil, later: seen.saveState()) == .combined(seen.saveState()))
        #expect(try seen.combine(earlier: earlier, later: nil) == .combined(earlier))
        let old = Array(#"{"seen":[["x"],["y"]]}"#.utf8)
        #expect(try new.combine(earlier: old, later: new.saveState()) == .combined(whole))
        #expect(try seen.combine(earlier: old, later: seen.saveState()) == .runAgain)
        #expect(throws: PipeRunError.self) { try new.combine(earlier: Array("{".utf8), later: new.saveState()) }
    }

    @Test func headAddsCountsWhileTheJobGoesOn() throws {
        let head = try Self.fed("head:10", [])
        func state(_ n: Int) throws -> [UInt8] { try HeadTransform.savedState(of: HeadTransform.State(emitted: n)) }
        #expect(try head.combine(earlier: nil, later: nil) == .combined(nil))
        #expect(try head.combine(earlier: nil, later: state(10)) == .combined(state(10)))
        #expect(try head.combine(earlier: state(0), later: state(10)) == .combined(state(10)))
        #expect(try head.combine(earlier: state(3), later: nil) == .combined(state(3)))
        #expect(try head.combine(earlier: state(3), later: state(6)) == .combined(state(9)))
        #expect(try head.combine(earlier: state(3), later: state(7)) == .runAgain)
        #expect(try head.combine(earlier: state(9), later: state(10)) == .runAgain)
        #expect(try head.combine(earlier: state(10), later: state(0)) == .runAgain)
        #expect(try head.combine(earlier: state(Int.max), later: state(Int.max)) == .runAgain)
        #expect(try head.saveState() == state(0))
        #expect(throws: PipeRunError.self) { try head.combine(earlier: Array("[]".utf8), later: state(1)) }
        #expect(throws: PipeRunError.self) { try head.combine(earlier: state(-1), later: state(1)) }
    }

    /// Many keys: the combined table is built in one pass (a quadratic one would not finish).
    @Test(.timeLimit(.minutes(1)), arguments: ["count-by:a,b", "dedupe:a"])
    func manyKeysCombine(spec: String) throws {
        let count = 60_000
        let records = (0..<count).map { i in
            Record(fields: [Array("key\(i)".utf8), Array("\(i % 3)".utf8), []], line: Int64(i + 2), offset: Int64(i))
        }
        let first = try Self.fed(spec, Array(records[..<(count / 2)]))
        let second = try Self.fed(spec, Array(records[(count / 2)...]))
        let whole = try Self.fed(spec, records).saveState()
        #expect(try second.combine(earlier: first.saveState(), later: second.saveState()) == .combined(whole))
    }

    // MARK: Declarations

    static let declarations: [(String, RangeSupport)] = [
        ("select:a,c", .rowLocal), ("drop:b", .rowLocal), ("rename:a=x", .rowLocal),
        ("filter:a=1", .rowLocal), ("grep:x", .rowLocal), ("replace:a/x/y", .rowLocal),
        ("split:space:2", .rowLocal), ("sample:0.5:7", .rowLocal), ("delay:0", .rowLocal),
        ("count-by:a", .combinable), ("dedupe:a,b", .combinable), ("head:3", .combinable),
        ("exec:cat", .none), ("exec:row-local:cat", .rowLocal), ("exec:row-local:./tool --x", .rowLocal),
    ]

    /// Made from specs but never started: `exec` starts its child only in `start`.
    @Test(arguments: declarations)
    func builtInsDeclareHowTheyRunInRanges(spec: String, expected: RangeSupport) throws {
        #expect(try TransformRegistry.builtIn.make(spec).rangeSupport == expected)
    }

    @Test func execTakesRowLocalBeforeItsCommand() throws {
        let plain = try #require(try TransformRegistry.builtIn.make("exec:python3 tool.py") as? ExecTransform)
        #expect(plain.command == "python3 tool.py" && !plain.isRowLocal)
        let local = try #require(try TransformRegistry.builtIn.make("exec:row-local:python3 tool.py") as? ExecTransform)
        #expect(local.command == "python3 tool.py" && local.isRowLocal)
        for spec in ["exec:", "exec: ", "exec:row-local:", "exec:row-local:  "] {
            #expect(throws: PipeRunError.self, "\(spec)") { try TransformRegistry.builtIn.make(spec) }
        }
        #expect(ExecTransform(command: "cat").rangeSupport == .none)
    }

    /// A transform that declares nothing runs one range at a time, and never combines.
    @Test func undeclaredTransformsRunInOrder() throws {
        final class Tally: RowTransform {
            func start(input: Columns) throws -> Columns { input }
            func process(_ row: Row, emit: (Row) throws -> Void) throws {}
        }
        let t = Tally()
        #expect(t.rangeSupport == .none)
        #expect(try t.combine(earlier: nil, later: nil) == .runAgain)
        #expect(try t.combine(earlier: [1], later: [2]) == .runAgain)
    }
}
