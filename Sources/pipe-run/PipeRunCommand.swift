import ArgumentParser
import PipeRun

@main
struct PipeRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipe-run",
        abstract: "Run CSV, TSV or log files through per-row transforms as resumable jobs.",
        discussion: """
            Interrupt a job at any moment (Ctrl-C, kill, a deploy, kill -9, a power loss) and run the
            same command again: it resumes from its last checkpoint, and the finished output is byte for
            byte what one uninterrupted run writes.

            Exit status: 0 done, 64 usage, 65 data error, 66 input missing, 73 cannot create output,
            74 I/O error, 75 interrupted (run the same command again to resume).
            """,
        subcommands: [Run.self, Transforms.self],
        defaultSubcommand: nil
    )
}
