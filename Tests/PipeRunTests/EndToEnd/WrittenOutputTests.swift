import Foundation
import Testing

/// End-to-end: what the output holds: records copied whole or written field by field with
/// minimal quoting and LF line ends, and nothing for an empty input.
@Suite struct WrittenOutputTests {
    @Test func copiedRecordsGetMinimalQuotingAndLFLineEnds() throws {
        // Records that are already written as the writer would are copied whole; the others
        // (needless quotes, CRLF) are written field by field.
        let scratch = try Scratch()
        try scratch.write("in.csv", "a,b\n\"abc\",x\n\"a,b\",y\n\"q\"\"q\",z\n\"\",w\n\"line\nx\",v\r\n\"ok\r\nz\",u\n")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("out.csv") == "a,b\nabc,x\n\"a,b\",y\n\"q\"\"q\",z\n,w\n\"line\nx\",v\n\"ok\r\nz\",u\n")
    }

    @Test func emptyInputGivesEmptyOutput() throws {
        let scratch = try Scratch()
        try scratch.write("empty.csv", "")
        let r = try Tool.run(["run", "empty.csv", "-o", "out.csv"], in: scratch.url)
        #expect(r.status == 0)
        #expect(try scratch.read("out.csv").isEmpty)
    }

    /// An output named by a symbolic link to a file that is not there yet is created through
    /// the link, and the job resumes and completes through it.
    @Test func anOutputLinkToAFileNotThereYetIsFollowed() throws {
        let scratch = try Scratch()
        try scratch.write("in.csv", Orders.csv(rows: 200))
        try FileManager.default.createSymbolicLink(atPath: scratch.file("out.csv").path, withDestinationPath: "target.csv")
        let r = try Tool.run(["run", "in.csv", "-o", "out.csv", "--progress", "none"], in: scratch.url)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.text("target.csv") == Orders.csv(rows: 200))
        let again = try Tool.run(["run", "in.csv", "-o", "out.csv", "--progress", "none"], in: scratch.url)
        #expect(again.stderr.contains("already complete"), "\(again.stderr)")
    }
}
