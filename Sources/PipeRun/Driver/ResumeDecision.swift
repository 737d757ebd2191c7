/// What a run does with the checkpoint it finds, decided from observed facts alone.
///
/// The decision is made in two steps, because what must be looked at depends on the checkpoint:
/// ``atStart(_:)`` before the input is opened (a complete job is reported even when its input
/// is gone since, a rotated log), and ``beforeResuming(_:)`` once the input and the outputs the
/// checkpoint names have been observed. A thin layer (``JobRunner``) gathers the facts (stat,
/// hashes, the checkpoint's JSON); the decisions touch no file, so every case is unit-tested.
package enum ResumeDecision {
    /// The first step's answer.
    package enum AtStart: Sendable {
        /// No checkpoint to go by: the job starts from the top.
        case fresh
        /// The job is complete and its output is as it ended.
        case alreadyComplete(Checkpoint)
        /// The job ended without waiting for the disk (``Checkpoint/completion``): sync its
        /// outputs and report it complete; after a restart of the machine, first check that the
        /// bytes after the synced state are the ones written then (``RecordedEnd``).
        case confirmEnd(recorded: Checkpoint, afterRestart: Bool)
        /// A checkpoint to resume from, once the input and outputs are found as it describes
        /// (``beforeResuming(_:)``).
        case examine(Checkpoint)
        /// Refuse the run: nothing may be changed.
        case refuse(PipeRunError)
    }

    /// The second step's answer.
    package enum BeforeResuming: Sendable {
        /// Resume at the checkpoint's cursor; `notices` say what the user should know.
        case resume(Checkpoint, notices: [String])
        /// Refuse the run: nothing may be changed.
        case refuse(PipeRunError)
    }

    /// What is known before the input is opened.
    package struct StartFacts: Sendable {
        /// The checkpoint as it is in the file, nil when there is none (or it is not consulted:
        /// `--restart`, an output or input that is not a regular file).
        package var recorded: Checkpoint?
        package var checkpointPath: String
        /// This boot of the machine (nil where the platform cannot tell).
        package var bootID: String?
        package var job: JobDescription
        /// The job's input paths, as named now (patterns expanded).
        package var paths: [String]
        /// The output's current size, nil when it does not exist.
        package var outputLength: Int64?
    }

    /// The first step: a complete job, an end to confirm, a checkpoint to examine, or none.
    package static func atStart(_ facts: StartFacts) -> AtStart {
        guard let recorded = facts.recorded else { return .fresh }
        if let refusal = differentJob(recorded, facts.job, facts.paths, facts.checkpointPath) { return .refuse(refusal) }
        let current = recorded.resolved(bootID: facts.bootID)
        if current.status == .complete {
            guard facts.outputLength == current.output.length else {
                return .refuse(PipeRunError(.dataError, "the checkpoint \(facts.checkpointPath) says this job is complete, but its output \(current.output.path) is missing or has changed; add --restart to run it again"))
            }
            // (Resolved to the complete job, a recorded end happened in this boot.)
            return recorded.completion != nil ? .confirmEnd(recorded: recorded, afterRestart: false) : .alreadyComplete(current)
        }
        if let end = recorded.completion, facts.outputLength != nil {
            return .confirmEnd(recorded: recorded, afterRestart: end.bootID != facts.bootID)
        }
        return .examine(current)
    }

    /// A checkpoint of another job: different transforms or options (usage, 64), or other files.
    package static func differentJob(_ saved: Checkpoint, _ job: JobDescription, _ paths: [String],
                                     _ checkpointPath: String) -> PipeRunError? {
        let differences = job.differences(from: saved.job)
        if !differences.isEmpty {
            return PipeRunError(.usage, "the checkpoint \(checkpointPath) belongs to a different job: \(differences.joined(separator: "; ")); run the original command to resume it, or add --restart to start this one over")
        }
        let savedPaths = saved.inputs?.map(\.path) ?? [saved.input.path]
        // With patterns, the checkpoint's file list is the job's (checked with the patterns above).
        if job.inputPatterns == nil && savedPaths != paths {
            return PipeRunError(.usage, "the checkpoint \(checkpointPath) belongs to a job on \(savedPaths.joined(separator: " ")), not \(paths.joined(separator: " ")); add --restart to start over")
        }
        return nil
    }

    /// What is known once the input file at the cursor and the outputs have been looked at.
    package struct ResumeFacts: Sendable {
        package var saved: Checkpoint
        package var checkpointPath: String
        package var transformCount: Int
        /// The input file the cursor is in, as it is now.
        package var input: ObservedInput
        /// The output and the quarantine file, nil when missing.
        package var output: ObservedOutput?
        package var quarantinePath: String?
        package var quarantine: ObservedOutput?
    }

    /// The second step: resume at the cursor, or refuse, checking in this order that the
    /// checkpoint is whole, that the input is the file it was (strictly; only up to the cursor
    /// after a failure, so that a fixed input resumes), that the outputs still hold what the
    /// checkpoint vouches for, and that gzip input is still gzip.
    package static func beforeResuming(_ facts: ResumeFacts) -> BeforeResuming {
        let saved = facts.saved
        do {
            try saved.validate(path: facts.checkpointPath, transforms: facts.transformCount)
        } catch let error as PipeRunError {
            return .refuse(error)
        } catch {
            return .refuse(PipeRunError(.dataError, "\(error)"))
        }
        var notices: [String] = []
        let relaxed = saved.status == .failed
        let changes = InputChanges.sinceCheckpoint(saved, now: facts.input, relaxed: relaxed)
        if !changes.isEmpty {
            return .refuse(PipeRunError(.dataError, "input \(saved.input.path) changed since the checkpoint: \(changes.joined(separator: "; ")); add --restart to start over"))
        }
        if relaxed && (facts.input.modifiedNanoseconds != saved.input.modifiedNanoseconds || facts.input.size != saved.input.size) {
            notices.append("input \(saved.input.path) changed after the failure, but not before the bad record: resuming at byte \(saved.cursor.offset)")
        }
        if let refusal = outputRefusal(saved.output, facts.output, path: saved.output.path, what: "output") {
            return .refuse(refusal)
        }
        if let path = facts.quarantinePath, let q = saved.quarantine, q.path == path,
           let refusal = outputRefusal(q, facts.quarantine, path: path, what: "quarantine file") {
            return .refuse(refusal)
        }
        if saved.gzip != nil && !facts.input.isGzip {
            return .refuse(PipeRunError(.dataError, "input \(saved.input.path) is no longer gzip; add --restart to start over"))
        }
        if saved.gzip == nil && facts.input.isGzip && saved.cursor.offset > 0 {
            return .refuse(PipeRunError(.dataError, "input \(saved.input.path) is gzip now but was not; add --restart to start over"))
        }
        if saved.completion != nil {
            notices.append("the machine restarted after this job ended, before its output was known to be on the disk: writing again what followed the last checkpoint")
        }
        return .resume(saved, notices: notices)
    }

    /// Why an output (nil when missing) no longer holds what `state` vouches for, if it does not.
    static func outputRefusal(_ state: OutputState, _ now: ObservedOutput?, path: String, what: String) -> PipeRunError? {
        guard let now else {
            guard state.length == 0 else {
                return PipeRunError(.dataError, "\(what) \(path) is missing, but the checkpoint records \(state.length) bytes of it; it was deleted or moved: put it back to resume, or add --restart to start over")
            }
            return nil
        }
        guard now.length >= state.length else {
            return PipeRunError(.dataError, "\(what) \(path) is shorter (\(now.length) bytes) than the checkpoint records (\(state.length)); it was changed or replaced: add --restart to start over")
        }
        guard now.tailHash == state.tailHash else {
            return PipeRunError(.dataError, "\(what) \(path) was modified since the checkpoint (its bytes before byte \(state.length) differ); add --restart to start over")
        }
        return nil
    }
}

/// An input file as it is now, for comparing with an ``InputIdentity``.
package struct ObservedInput: Sendable {
    package var device: UInt64
    package var inode: UInt64
    package var size: Int64
    package var modifiedNanoseconds: Int64
    /// The hash of its first bytes, as many as the identity hashed.
    package var headHash: String
    /// The hash of the bytes before the checkpoint's cursor (as many as it hashed), nil when
    /// the file is too short to have them or they were not read.
    package var beforeCursorHash: String?
    package var isGzip: Bool
}

/// An output file as it is now: its length, and the hash of the bytes before the length a
/// checkpoint recorded (as many as it hashed).
package struct ObservedOutput: Sendable {
    package var length: Int64
    package var tailHash: String?
}

/// How an input file differs from what the job saw, one phrase per change.
package enum InputChanges {
    /// The changes of the file the cursor is in. After a failure (`relaxed`), only the bytes
    /// up to the cursor must be the same: the user may have fixed the bad record.
    package static func sinceCheckpoint(_ saved: Checkpoint, now: ObservedInput, relaxed: Bool) -> [String] {
        let was = saved.input
        var changes = relaxed ? [] : identity(was, now)
        if now.size < saved.cursor.inputOffset {
            changes.append("it is shorter than the checkpoint's cursor (byte \(saved.cursor.inputOffset))")
            return changes
        }
        if (!relaxed || Int64(was.headLength) <= saved.cursor.inputOffset) && now.headHash != was.headHash {
            changes.append("its first \(was.headLength) bytes differ")
        }
        if now.beforeCursorHash != saved.cursor.beforeHash {
            changes.append("the bytes before the cursor (byte \(saved.cursor.inputOffset)) differ")
        }
        return changes
    }

    /// The changes of a later input file since the job started (before its turn comes).
    package static func sinceStart(_ was: InputIdentity, now: ObservedInput) -> [String] {
        var changes = identity(was, now)
        if changes.isEmpty && now.headHash != was.headHash {
            changes.append("its first \(was.headLength) bytes differ")
        }
        return changes
    }

    private static func identity(_ was: InputIdentity, _ now: ObservedInput) -> [String] {
        var changes: [String] = []
        if now.device != was.device || now.inode != was.inode { changes.append("it was replaced by another file") }
        if now.size != was.size { changes.append("its size was \(was.size) bytes, now \(now.size)") }
        if now.modifiedNanoseconds != was.modifiedNanoseconds { changes.append("it was modified") }
        return changes
    }
}
