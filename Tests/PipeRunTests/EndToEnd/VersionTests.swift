import Foundation
import PipeRun
import Testing

/// End-to-end: `pipe-run --version`, and the version that `status --json` shows and each
/// checkpoint records as its writer's.
@Suite struct VersionTests {
    @Test func versionIsPrintedAndRecorded() throws {
        let scratch = try Scratch()
        let printed = try Tool.run(["--version"], in: scratch.url)
        #expect(printed.status == 0)
        #expect(printed.stdout == pipeRunVersion + "\n")
        try scratch.write("orders.csv", Orders.csv(rows: 50))
        #expect(try Tool.run(["run", "orders.csv", "-o", "out.csv", "--progress", "none"], in: scratch.url).status == 0)
        let checkpoint = try JSONSerialization.jsonObject(with: scratch.read("out.csv.checkpoint")) as? [String: Any]
        #expect(checkpoint?["writerVersion"] as? String == pipeRunVersion)
        let status = try Tool.run(["status", "out.csv", "--json"], in: scratch.url)
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(json?["version"] as? String == pipeRunVersion)
        #expect(json?["writerVersion"] as? String == pipeRunVersion)
    }
}
