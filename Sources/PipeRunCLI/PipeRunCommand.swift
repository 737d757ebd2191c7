import ArgumentParser
import CStartup
import PipeRun
import Synchronization

/// The `pipe-run` command line, for the `pipe-run` tool and for custom binaries that add their
/// own transforms.
///
/// A custom binary's `main.swift` is one line:
///
/// ```swift
/// PipeRunCLI.main(registering: [MaskEmail.descriptor, RunningTotals.descriptor])
/// ```
///
/// and gives its users the whole command line (`run`, `transforms`, signals, checkpoints) with
/// those transforms available by name.
public enum PipeRunCLI {
    static let registry = Mutex(TransformRegistry.builtIn)

    /// The transforms the command line knows.
    static var transforms: TransformRegistry { registry.withLock { $0 } }

    /// Parses the process's arguments and runs the command, with `transforms` available by name
    /// beside the built-ins; never returns.
    public static func main(registering transforms: [TransformDescriptor] = []) -> Never {
        // First of all: a stop signal from here on interrupts the job (status 75) instead of
        // killing the process. They were blocked before main (see CStartup); this unblocks them.
        _ = cstartup_stop_signals_blocked()
        StopSignals.install(graceSeconds: JobOptions(inputPaths: [], outputPath: "").graceSeconds)
        registry.withLock { $0.register(transforms) }
        PipeRunCommand.main()
        exit(0)
    }
}

struct PipeRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipe-run",
        abstract: "Run CSV, TSV or log files through per-row transforms as resumable jobs.",
        discussion: """
            Interrupt a job at any moment (Ctrl-C, kill, a deploy, kill -9, a power loss) and run \
            the same command again: it resumes from its last checkpoint, and the finished output \
            is byte for byte what one uninterrupted run writes.

            Exit status: 0 done, 64 usage, 65 data error, 66 input missing, 73 cannot create \
            output, 74 I/O error, 75 interrupted (run the same command again to resume).
            """,
        version: pipeRunVersion,
        subcommands: [Run.self, Status.self, Transforms.self],
        defaultSubcommand: nil
    )
}
