import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PipeRun

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a job's state from its checkpoint, without touching anything (also while it runs).")

    @Argument(help: "The job's output file (its checkpoint is OUTPUT.checkpoint).")
    var output: String?

    @Option(help: "The checkpoint file, when it is not OUTPUT.checkpoint.")
    var checkpoint: String?

    @Flag(help: "Print JSON, for scripts.")
    var json = false

    func run() throws {
        StopSignals.restoreDefaultActions()
        guard let path = checkpoint ?? output.map({ $0 + ".checkpoint" }) else {
            throw ValidationError("give the job's output file, or --checkpoint PATH")
        }
        do {
            let status = try JobStatus.read(checkpointPath: path)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                print(status.text)
            }
        } catch let error as PipeRunError {
            printNotice("error: \(error.message)")
            throw ExitCode(error.exitStatus)
        }
    }
}
