import Foundation
import Testing

/// End-to-end: a `.gz` output is a valid gzip file in every state a user can see it, also when
/// no row is written to it (gzip of nothing is a 20-byte member).
@Suite struct EmptyGzipOutputTests {
    @Test(arguments: [["--no-header"], ["--format", "lines"], []])
    func anEmptyGzipOutputIsAValidGzipFile(_ format: [String]) throws {
        let scratch = try Scratch()
        try scratch.write("none.csv", "")
        try scratch.write("orders.csv", Orders.csv(rows: 3000))
        var outputs: [String] = []
        for (input, name) in [("none.csv", "empty.csv.gz"), ("orders.csv", "nothing.csv.gz")] {
            let r = try Tool.run(["run", input, "-o", name, "--progress", "none", "-t", "grep:no row has this"] + format,
                                 in: scratch.url)
            #expect(r.status == 0, "\(r.stderr)")
            outputs.append(name)
        }
        // Interrupted before any row was written: at least 3 s of 1 ms rows, stopped at the
        // first deadline check, on any machine.
        let stopped = try Tool.run(["run", "orders.csv", "-o", "stopped.csv.gz", "--progress", "none", "-t", "delay:1",
                                    "-t", "grep:no row has this", "--max-runtime", "0"] + format, in: scratch.url)
        #expect(stopped.status == 75, "\(stopped.stderr)")
        outputs.append("stopped.csv.gz")
        for name in outputs {
            let test = try capture("gzip", ["-t", name], in: scratch.url)
            #expect(test.status == 0, "\(name): \(test.output)")
            let text = try capture("gzip", ["-dc", name], in: scratch.url)
            if format.isEmpty && name != "empty.csv.gz" {
                #expect(text.output == Orders.header + "\n", "\(name)")
            } else {
                #expect(text.output == "", "\(name)")
            }
        }
    }
}
