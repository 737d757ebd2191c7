import Foundation
import Testing
@testable import PipeRun

/// The binary state of `count-by` and `dedupe`: it round-trips, a damaged one is refused with an
/// error (never a trap), and the JSON state of earlier versions still restores.
@Suite struct TransformStateTests {
    /// Random rows of three columns with few distinct values, some empty and some not UTF-8.
    func randomRows(_ count: Int, seed: UInt64) -> [[[UInt8]]] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in
            (0..<3).map { _ in
                let length = Int(rng.next() % 4)
                return (0..<length).map { _ in [0x61, 0x62, 0xFF, 0x2C][Int(rng.next() % 4)] }
            }
        }
    }

    /// Feeds `rows` to `transform` and returns what it emits, then what `finish` emits.
    func feed(_ transform: some RowTransform, _ rows: [[[UInt8]]], finish: Bool = true) throws -> [[[UInt8]]] {
        let builder = RowBuilder()
        var emitted: [[[UInt8]]] = []
        let collect: (Row) throws -> Void = { row in emitted.append((0..<row.count).map { Array(row[$0].bytes) }) }
        for row in rows {
            builder.reset()
            for field in row { field.withUnsafeBytes { builder.appendCopy($0) } }
            try builder.withRow { try transform.process($0, emit: collect) }
        }
        if finish { try transform.finish(emit: collect) }
        return emitted
    }

    func makeTransform(_ kind: String, _ columns: [String]) throws -> any RowTransform {
        let t: any RowTransform = kind == "count-by" ? CountByTransform(columns: columns) : DedupeTransform(columns: columns)
        _ = try t.start(input: Columns(["a", "b", "c"]))
        return t
    }

    @Test(arguments: ["count-by", "dedupe"], [["b"], ["a", "c"], ["c", "a", "b"]])
    func stateRoundTripsAtEveryRowCount(kind: String, columns: [String]) throws {
        let rows = randomRows(600, seed: 51)
        let whole = try feed(try makeTransform(kind, columns), rows)
        for cut in [0, 1, 7, 150, 599, 600] {
            let first = try makeTransform(kind, columns)
            let head = try feed(first, Array(rows[..<cut]), finish: false)
            let state = try #require(try first.saveState())
            // Neither JSON nor UTF-8: the checkpoint holds it as base64 at any size.
            #expect(state.first == 0xFF && String(validating: state, as: UTF8.self) == nil)
            let second = try makeTransform(kind, columns)
            try second.restoreState(state)
            #expect(try head + feed(second, Array(rows[cut...])) == whole, "\(kind) \(columns) cut at \(cut)")
        }
    }

    @Test(arguments: ["count-by", "dedupe"])
    func damagedStatesAreRefusedNotTrapped(kind: String) throws {
        let columns = ["a", "c"]
        let rows = randomRows(300, seed: 52)
        let source = try makeTransform(kind, columns)
        _ = try feed(source, rows, finish: false)
        let state = try #require(try source.saveState())
        var refused = 0
        // Every truncation: all but the whole state must be refused.
        for length in 0..<state.count {
            #expect(throws: PipeRunError.self) { try makeTransform(kind, columns).restoreState(Array(state[..<length])) }
        }
        // Random byte changes: refused, or restored into a state that still works.
        var rng = SplitMix(seed: 53)
        for _ in 0..<2000 {
            var damaged = state
            for _ in 0...(rng.next() % 3) {
                damaged[Int(rng.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            let t = try makeTransform(kind, columns)
            do {
                try t.restoreState(damaged)
                _ = try feed(t, Array(rows.prefix(20)))
            } catch is PipeRunError {
                refused += 1
            }
        }
        #expect(refused > 1000)
        // A state for a different number of columns.
        #expect(throws: PipeRunError.self) { try makeTransform(kind, ["a"]).restoreState(state) }
    }

    @Test func statesOfEarlierVersionsStillRestore() throws {
        let rows: [[[UInt8]]] = [[[0x61], [0x78], [0xC3, 0xA9]], [[0x62], [0x79], []], [[0x61], [0x7A], [0xC3, 0xA9]]]
        // count-by:a,c as an earlier version saved it, after the first two rows.
        let countBy = try makeTransform("count-by", ["a", "c"])
        try countBy.restoreState(Array(#"{"counts":[1,1],"keys":[["a","é"],["b",""]]}"#.utf8))
        #expect(try feed(countBy, [rows[2]]) == [[[0x61], [0xC3, 0xA9], [0x32]], [[0x62], [], [0x31]]])
        // dedupe:a, likewise.
        let dedupe = try makeTransform("dedupe", ["a"])
        try dedupe.restoreState(Array(#"{"seen":[["a"],["b"]]}"#.utf8))
        #expect(try feed(dedupe, [rows[2], [[0x63], [], []]]) == [[[0x63], [], []]])
        // Counts that adding one would overflow are refused, old or new.
        #expect(throws: PipeRunError.self) {
            try makeTransform("count-by", ["a"]).restoreState(Array(#"{"counts":[9223372036854775807],"keys":[["a"]]}"#.utf8))
        }
        var huge = KeyTableState.header(columns: 1, keys: 1)
        huge += [1, 0x61]
        appendVarint(UInt64(Int.max), to: &huge)
        #expect(throws: PipeRunError.self) { try makeTransform("count-by", ["a"]).restoreState(huge) }
        // Old states that do not fit are refused.
        #expect(throws: PipeRunError.self) {
            try makeTransform("count-by", ["a"]).restoreState(Array(#"{"counts":[1],"keys":[["a"],["b"]]}"#.utf8))
        }
        #expect(throws: PipeRunError.self) {
            try makeTransform("dedupe", ["a"]).restoreState(Array(#"{"seen":[["a"],["a"]]}"#.utf8))
        }
    }
}

extension TransformStateTests {
    /// The checkpoint keeps each state as ``ExactBytes``: any bytes come back as they were
    /// (an earlier version decoded them as UTF-8, which replaced invalid bytes).
    @Test func anyStateBytesSurviveTheCheckpointsJSON() throws {
        var rng = SplitMix(seed: 54)
        for length in [0, 1, 2, 3, 100, 5000] {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let text = Array("{\"a\":\"\u{0}é\"}".utf8)
                let states: [ExactBytes?] = [nil, ExactBytes(bytes), ExactBytes(text)]
                let json = try JSONEncoder().encode(states)
                let back = try JSONDecoder().decode([ExactBytes?].self, from: json)
                #expect(back == states)
            }
        }
    }
}
