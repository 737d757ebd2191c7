import Foundation
import Testing

/// End-to-end: the sample custom-transform package builds against this library, and its binary
/// is the whole pipe-run command line with its own transforms, resumable like the built-ins.
@Suite(.serialized) struct CustomTransformPackageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let package = root.appendingPathComponent("samples/custom-transform")

    func buildSample() throws -> (status: Int32, output: String) {
        try capture("swift", ["build", "--package-path", Self.package.path])
    }

    @Test func samplePackageBuildsRunsAndResumes() throws {
        // Build the sample like a user would. A build folder left from before a source file
        // was added to this package does not see the new file (the build plan is cached): when
        // the first build fails, its output is printed and the sample is built again from clean.
        var (buildStatus, buildOutput) = try buildSample()
        if buildStatus != 0 {
            print("the sample package's first build failed; building it again from clean:\n\(buildOutput.suffix(3000))")
            try? FileManager.default.removeItem(at: Self.package.appendingPathComponent(".build"))
            (buildStatus, buildOutput) = try buildSample()
        }
        try #require(buildStatus == 0, "the sample package did not build:\n\(buildOutput.suffix(3000))")
        let binary = Self.package.appendingPathComponent(".build/debug/my-pipe-run").path

        let scratch = try Scratch()
        try scratch.write("orders.csv", Orders.csv(rows: 3000))
        func run(_ args: [String]) throws -> (Int32, String) {
            try capture(binary, args, in: scratch.url)
        }
        let job = ["-t", "mask-email:customer", "-t", "running-total:customer,amount"]
        let (status, stderr) = try run(["run", "orders.csv", "-o", "ref.csv"] + job)
        #expect(status == 0, "\(stderr)")
        // Every running total is the sum of the customer's amounts so far (this data has no
        // addresses, so mask-email leaves the names alone).
        let rows = try parse(try scratch.text("ref.csv")).rows
        #expect(rows.first == ["id", "customer", "city", "status", "amount", "note", "running_total"])
        var totals: [String: Int] = [:]
        for row in rows.dropFirst() {
            totals[row[1], default: 0] += Int((Double(row[4])! * 100).rounded())
            let t = totals[row[1]]!
            #expect(row[6] == "\(t / 100).\(t % 100 < 10 ? "0" : "")\(t % 100)", "\(row)")
        }
        #expect(rows.count == 3001)

        // Interrupted over and over (slices and a SIGKILL), the output is the same.
        // 3,000 rows of 0.4 ms take 1.2 s at the least; a slice of 0.15 s stops within a tick
        // (10 ms) and a row of its deadline: at least three slices on any machine.
        let sliced = ["run", "orders.csv", "-o", "out.csv", "-t", "delay:0.4"] + job + ["--max-runtime", "0.15"]
        var slices = 0
        while true {
            let (s, e) = try run(sliced)
            if s == 0 { break }
            #expect(s == 75, "\(e)")
            slices += 1
            if slices > 80 { Issue.record("never finished"); break }
        }
        #expect(slices >= 3)
        #expect(try scratch.read("out.csv") == scratch.read("ref.csv"))
        let (listed, _) = try run(["transforms"])
        #expect(listed == 0)
    }
}
