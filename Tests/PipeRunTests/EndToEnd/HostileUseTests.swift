import Foundation
import Testing

/// End-to-end: what a demanding or careless user tries — files passed twice, hand-edited
/// checkpoints, huge option values, devices as output, odd inputs.
@Suite(.serialized) struct HostileUseTests {
    @Test func theSameFileTwiceIsRefusedBeforeAnythingIsWritten() throws {
        let scratch = try Scratch()
        let data = Orders.csv(rows: 500)
        try scratch.write("in.csv", data)
        let cases: [[String]] = [
            ["run", "in.csv", "-o", "in.csv"],
            ["run", "in.csv", "-o", "out.csv", "--checkpoint", "in.csv"],
            ["run", "in.csv", "-o", "out.csv", "--on-error", "quarantine=in.csv"],
            ["run", "in.csv", "-o", "out.csv", "--on-error", "quarantine=out.csv"],
        ]
        for args in cases {
            let r = try Tool.run(args, in: scratch.url)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("are the same file"), "\(args): \(r.stderr)")
            #expect(try scratch.text("in.csv") == data)
        }
    }

    @Test func handEditedCheckpointsAreRefusedWithoutTouchingTheOutput() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 400))
        let args = ["run", "in.csv", "-o", "out.csv", "-t", "delay:1", "-t", "count-by:status"]
        // Stopped once rows are counted (within about 60 of the 400 rows of 1 ms).
        let stopped = try stopWhen(args + ["--checkpoint-every", "0.05"], in: scratch, "rows read") { $0.rowsRead > 0 }
        #expect(stopped.status == 75, "\(stopped.stderr)")
        let original = try scratch.text("out.csv.checkpoint")
        let output = try scratch.read("out.csv")
        let edits: [(String, String)] = [
            ("\"headLength\" : ", "\"headLength\" : 1000000000000000000"),
            ("\"beforeLength\" : ", "\"beforeLength\" : 0"),
            ("\"tailLength\" : ", "\"tailLength\" : 1000000000000000000"),
            ("\"rowsRead\" : ", "\"rowsRead\" : 9223372036854775807"),
            ("\"runs\" : ", "\"runs\" : 9223372036854775807"),
            ("\"offset\" : ", "\"offset\" : -5"),
        ]
        for (key, replacement) in edits {
            var text = original
            if let at = text.range(of: key) {
                var end = at.upperBound
                while end < text.endIndex, text[end] == "-" || text[end].isNumber { end = text.index(after: end) }
                text.replaceSubrange(at.lowerBound..<end, with: replacement)
            }
            #expect(text != original)
            try scratch.write("out.csv.checkpoint", text)
            let r = try Tool.run(args, in: scratch.url)
            #expect(r.status == 65, "\(key): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("--restart"), "\(key): \(r.stderr)")
            #expect(try scratch.read("out.csv") == output, "\(key)")
        }
        // Count-by states that do not fit: one in the JSON of earlier versions, one binary state
        // that ends early (base64 of a header promising five keys), and one that is not base64.
        if let range = original.firstRange(of: #/"transformStates" : \[[^\]]*\]/#) {
            for state in [#""{\"counts\":[],\"keys\":[[\"paid\"]]}""#, #"{"base64": "/2tleXMxAQU="}"#,
                          #"{"base64": "?"}"#] {
                var text = original
                text.replaceSubrange(range, with: #""transformStates" : [null, "# + state + "]")
                try scratch.write("out.csv.checkpoint", text)
                let r = try Tool.run(args, in: scratch.url)
                #expect(r.status == 65, "\(state): \(r.stderr)")
                #expect(r.stderr.contains("--restart"), "\(state): \(r.stderr)")
                #expect(try scratch.read("out.csv") == output)
            }
        } else {
            Issue.record("no transformStates in the checkpoint")
        }
        // Put the real checkpoint back: the job resumes and finishes.
        try scratch.write("out.csv.checkpoint", original)
        #expect(try Tool.run(args, in: scratch.url).status == 0)
    }

    @Test func hugeDurationsDoNotTrap() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 50))
        for extra in [["--max-runtime", "1e30"], ["--checkpoint-every", "1e30"], ["--max-runtime", "inf"],
                      ["--grace", "1e30"]] {
            let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "--restart"] + extra, in: scratch.url)
            #expect(r.status == 0, "\(extra): \(r.status) \(r.stderr)")
        }
    }

    @Test func maxRuntimeStopsEvenWhenRowsAreSlow() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 30))
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "delay:100", "--max-runtime", "0.3"], in: scratch.url)
        #expect(r.status == 75)
        // Rows take 100 ms at the least, so the deadline has passed after the third: the run
        // stops there (a fourth if a clock tick came late), whatever the machine's speed, and
        // well before its 30 rows' 3 s.
        let checkpoint = try #require(readCheckpoint(scratch, "out.csv.checkpoint"))
        #expect(checkpoint.rowsRead <= 4, "\(checkpoint.rowsRead) rows read before stopping")
        let runSeconds = try #require(checkpoint.json["elapsedSeconds"] as? Double)
        #expect(runSeconds < 1.5, "ran \(runSeconds) s")
        #expect(r.seconds < 2.9, "took \(r.seconds) s")
    }

    @Test func devicesAsOutputWorkButAreNotResumable() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 50))
        let r = try Tool.run(["run", "in.csv", "-o", "/dev/null"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("cannot be resumed"))
        #expect(!FileManager.default.fileExists(atPath: "/dev/null.checkpoint"))
    }

    @Test func linesInputCountedIntoColumnsIsCSVWhetherInterruptedOrNot() throws {
        let scratch = try Scratch()
        let text = (0..<300).map { ["GET /a 200", "GET /b 500", "POST /c 200"][$0 % 3] }.joined(separator: "\n") + "\n"
        try scratch.write("app.log", text)
        let plain = try Tool.run(["run", "app.log", "-o", "plain.csv", "--format", "lines", "-t", "count-by:1"], in: scratch.url)
        #expect(plain.status == 0)
        #expect(try scratch.text("plain.csv") == "1,count\nGET /a 200,100\nGET /b 500,100\nPOST /c 200,100\n")
        let args = ["run", "app.log", "-o", "sliced.csv", "--format", "lines", "-t", "delay:1", "-t", "count-by:1",
                    "--max-runtime", "0.1"]
        var runs = 0
        while try Tool.run(args, in: scratch.url).status == 75 { runs += 1; if runs > 30 { break } }
        #expect(runs >= 1)
        #expect(try scratch.read("sliced.csv") == scratch.read("plain.csv"))
    }

    @Test func noHeaderJobInterruptedBeforeItsFirstGoodRow() throws {
        let scratch = try Scratch()
        let text = String(repeating: "x\"y,1\n", count: 100) + String(repeating: "i,a\n", count: 100) + "1,2,3\n"
            + String(repeating: "i,b\n", count: 100)
        try scratch.write("nh.csv", text)
        let base = ["run", "nh.csv", "--no-header", "--on-error", "skip", "-t", "select:2,1"]
        let whole = try Tool.run(base + ["-o", "whole.csv"], in: scratch.url)
        #expect(whole.status == 0)
        #expect(whole.stderr.contains("101 bad rows"))
        let stopped = try Tool.run(base + ["-o", "parts.csv", "--max-runtime", "0"], in: scratch.url)
        #expect(stopped.status == 75)
        let resumed = try Tool.run(base + ["-o", "parts.csv"], in: scratch.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try scratch.read("parts.csv") == scratch.read("whole.csv"))
    }

    @Test func countByComparesBytesAndKeepsKeysApart() throws {
        let scratch = try Scratch()
        var bytes = Array("a,b\n".utf8)
        bytes += [0xFF, 0x2C, 0x31, 0x0A, 0xFE, 0x2C, 0x31, 0x0A]          // \xFF,1 and \xFE,1
        bytes += Array("\"x\u{1F}y\",z\nx,\"y\u{1F}z\"\n".utf8)        // two keys that a joiner would merge
        try Data(bytes).write(to: scratch.file("in.csv"))
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "count-by:a,b"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        let out = Array(try scratch.read("out.csv"))
        #expect(out == Array("a,b,count\n".utf8) + [0xFF, 0x2C, 0x31, 0x2C, 0x31, 0x0A, 0xFE, 0x2C, 0x31, 0x2C, 0x31, 0x0A]
            + Array("x\u{1F}y,z,1\nx,y\u{1F}z,1\n".utf8))
    }

    @Test func crOnlyLineEndsResynchroniseAfterABadRecord() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\r1,2\r3\"x,4\r5,6\r7,8\r")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "--on-error", "skip"], in: scratch.url)
        #expect(r.status == 0)
        #expect(try scratch.text("out.csv") == "a,b\n1,2\n5,6\n7,8\n")
        let failing = try Tool.run(["run", "in.csv", "-o", "fail.csv"], in: scratch.url)
        #expect(failing.stderr.contains("line 3,"), "\(failing.stderr)")
    }

    @Test func droppingEveryColumnIsRefused() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", "k,v\n1,2\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "-t", "drop:k,v"], in: scratch.url)
        #expect(r.status == 64)
    }
}
