/// This pipe-run's version: what `pipe-run --version` prints, what `status --json` shows, and
/// what each checkpoint records as the version that wrote it (``Checkpoint/writerVersion``).
///
/// The one definition; a release changes it here.
public let pipeRunVersion = "0.11.0"
