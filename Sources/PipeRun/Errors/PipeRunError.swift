/// An error that ends a job, with the exit status the command-line tool reports for it.
///
/// Exit statuses follow `sysexits.h`, so that schedulers and scripts can tell a job that
/// should simply be run again (``Code/interrupted``, 75) from one that needs a person.
public struct PipeRunError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; it decides the exit status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Storage: Int32 {
            case usage = 64
            case dataError = 65
            case noInput = 66
            case cannotCreate = 73
            case ioError = 74
            case interrupted = 75
        }
        let storage: Storage

        /// The command line or the job description is wrong (exit status 64).
        public static let usage = Code(storage: .usage)
        /// The input is malformed, or no longer matches the checkpoint (exit status 65).
        public static let dataError = Code(storage: .dataError)
        /// The input file does not exist or cannot be opened (exit status 66).
        public static let noInput = Code(storage: .noInput)
        /// The output or the checkpoint cannot be created (exit status 73).
        public static let cannotCreate = Code(storage: .cannotCreate)
        /// Reading or writing failed, for example because the disk is full (exit status 74).
        public static let ioError = Code(storage: .ioError)
        /// The job stopped early and can be resumed by running it again (exit status 75).
        public static let interrupted = Code(storage: .interrupted)

        /// The process exit status for this code.
        public var exitStatus: Int32 { storage.rawValue }

        public var description: String { "\(storage)" }
    }

    /// The kind of failure.
    public var code: Code
    /// A one-line explanation for a person, naming the file, byte offset and line where known.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The process exit status for this error.
    public var exitStatus: Int32 { code.exitStatus }
}

/// The exit statuses of `pipe-run`, documented in the README.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let cannotCreate: Int32 = 73
    public static let ioError: Int32 = 74
    public static let interrupted: Int32 = 75
}
