import Testing
@testable import PipeRun

/// The resume decision as a table of cases: observed facts in, fresh / complete / confirm the
/// end / resume / refuse out, with no file and no job run.
@Suite struct ResumeDecisionTests {
    static let job: JobDescription = {
        var options = JobOptions(inputPath: "in.csv", outputPath: "out.csv")
        options.transforms = ["filter:status=refunded"]
        return JobDescription(options)
    }()

    static let identity = InputIdentity(path: "in.csv", size: 5000, modifiedNanoseconds: 77, device: 1, inode: 2,
                                        headHash: "head", headLength: 4096)

    /// A checkpoint of `job` on in.csv, its cursor at byte 1000, 400 bytes of output vouched for.
    static func checkpoint(_ status: Checkpoint.Status = .interrupted, job: JobDescription = job) -> Checkpoint {
        Checkpoint(
            status: status, reason: nil, pid: 1, job: job, jobFingerprint: job.fingerprint, input: identity,
            inputs: [identity], inputColumns: ["id", "status"],
            cursor: Cursor(offset: 1000, line: 20, inputOffset: 1000, beforeHash: "before", beforeLength: 1000,
                           rowsRead: 19, rowsWritten: 3, badRows: 0, file: 0),
            gzip: nil, output: OutputState(path: "out.csv", length: 400, tailHash: "tail", tailLength: 400),
            quarantine: nil, transformStates: [nil], createdAt: "", updatedAt: "", runs: 1, interruptions: 1)
    }

    static func start(_ recorded: Checkpoint?, outputLength: Int64? = 400, boot: String = "boot-1",
                      paths: [String] = ["in.csv"], job: JobDescription = job) -> ResumeDecision.AtStart {
        ResumeDecision.atStart(.init(recorded: recorded, checkpointPath: "out.csv.checkpoint", bootID: boot,
                                     job: job, paths: paths, outputLength: outputLength))
    }

    static let sameInput = ObservedInput(device: 1, inode: 2, size: 5000, modifiedNanoseconds: 77, headHash: "head",
                                         beforeCursorHash: "before", isGzip: false)

    static func resume(_ saved: Checkpoint, input: ObservedInput = sameInput,
                       output: ObservedOutput? = ObservedOutput(length: 450, tailHash: "tail"),
                       quarantine: ObservedOutput? = nil, quarantinePath: String? = nil) -> ResumeDecision.BeforeResuming {
        ResumeDecision.beforeResuming(.init(saved: saved, checkpointPath: "out.csv.checkpoint", transformCount: 1,
                                            input: input, output: output, quarantinePath: quarantinePath,
                                            quarantine: quarantine))
    }

    /// The refusal's exit status and message, or nil for another decision.
    static func refusal(_ decision: ResumeDecision.AtStart) -> (Int32, String)? {
        if case .refuse(let error) = decision { return (error.exitStatus, error.message) }
        return nil
    }

    static func refusal(_ decision: ResumeDecision.BeforeResuming) -> (Int32, String)? {
        if case .refuse(let error) = decision { return (error.exitStatus, error.message) }
        return nil
    }

    static func ended(_ boot: String) -> Checkpoint {
        var complete = checkpoint(.complete)
        complete.output.length = 900
        return checkpoint(.running).recording(completion: complete, bootID: boot, outputCRC32: 1, quarantineCRC32: nil)
    }

    // MARK: Before the input is opened

    @Test func noCheckpointStartsFresh() {
        guard case .fresh = Self.start(nil) else { Issue.record("not fresh"); return }
    }

    @Test func aCompleteJobIsReportedWhenItsOutputIsAsItEnded() {
        guard case .alreadyComplete(let done) = Self.start(Self.checkpoint(.complete)) else { Issue.record("not complete"); return }
        #expect(done.output.length == 400)
        let missing = Self.refusal(Self.start(Self.checkpoint(.complete), outputLength: nil))
        #expect(missing?.0 == 65)
        #expect(missing?.1.contains("is missing or has changed") == true)
        #expect(Self.refusal(Self.start(Self.checkpoint(.complete), outputLength: 399))?.0 == 65)
    }

    @Test func anotherJobsCheckpointIsRefusedAsAUsageError() {
        var options = JobOptions(inputPath: "in.csv", outputPath: "out.csv")
        options.transforms = ["head:5"]
        let other = Self.refusal(Self.start(Self.checkpoint(), job: JobDescription(options)))
        #expect(other?.0 == 64)
        #expect(other?.1.contains("belongs to a different job: transforms was 'filter:status=refunded', now 'head:5'") == true)
        let files = Self.refusal(Self.start(Self.checkpoint(.complete), paths: ["other.csv"]))
        #expect(files?.0 == 64)
        #expect(files?.1.contains("belongs to a job on in.csv, not other.csv") == true)
    }

    @Test func anEndRecordedWithoutTheDiskIsConfirmed() {
        guard case .confirmEnd(_, let afterRestart) = Self.start(Self.ended("boot-1"), outputLength: 900) else {
            Issue.record("not confirmed in the same boot"); return
        }
        #expect(!afterRestart)
        guard case .confirmEnd(_, let restarted) = Self.start(Self.ended("boot-0"), outputLength: 900) else {
            Issue.record("not confirmed after a restart"); return
        }
        #expect(restarted)
        // In the same boot the output must be as the end left it; after a restart whatever is
        // there is checked by its CRC, and without an output the synced state is examined.
        #expect(Self.refusal(Self.start(Self.ended("boot-1"), outputLength: 400))?.0 == 65)
        guard case .examine(let synced) = Self.start(Self.ended("boot-0"), outputLength: nil) else {
            Issue.record("not examined"); return
        }
        #expect(synced.status == .running && synced.completion != nil)
    }

    @Test func anUnfinishedJobIsExamined() {
        guard case .examine(let saved) = Self.start(Self.checkpoint(.interrupted), outputLength: nil) else {
            Issue.record("not examined"); return
        }
        #expect(saved.cursor.offset == 1000)
    }

    // MARK: Once the input and outputs are observed

    @Test func resumesWhenEverythingIsAsTheCheckpointSays() {
        guard case .resume(let saved, let notices) = Self.resume(Self.checkpoint()) else { Issue.record("not resumed"); return }
        #expect(saved.cursor.offset == 1000)
        #expect(notices.isEmpty)
    }

    @Test func aChangedInputIsRefused() {
        var bigger = Self.sameInput
        bigger.size = 6000
        let refused = Self.refusal(Self.resume(Self.checkpoint(), input: bigger))
        #expect(refused?.0 == 65)
        #expect(refused?.1 == "input in.csv changed since the checkpoint: its size was 5000 bytes, now 6000; add --restart to start over")
        var replaced = Self.sameInput
        replaced.inode = 3
        #expect(Self.refusal(Self.resume(Self.checkpoint(), input: replaced))?.1.contains("replaced by another file") == true)
        var shorter = Self.sameInput
        shorter.size = 999
        shorter.beforeCursorHash = nil
        #expect(Self.refusal(Self.resume(Self.checkpoint(), input: shorter))?.1.contains("shorter than the checkpoint's cursor (byte 1000)") == true)
        var rewritten = Self.sameInput
        rewritten.headHash = "other"
        #expect(Self.refusal(Self.resume(Self.checkpoint(), input: rewritten))?.1.contains("its first 4096 bytes differ") == true)
    }

    @Test func afterAFailureOnlyTheBytesUpToTheCursorMustBeTheSame() {
        var fixed = Self.sameInput
        fixed.size = 5100
        fixed.modifiedNanoseconds = 99
        guard case .resume(_, let notices) = Self.resume(Self.checkpoint(.failed), input: fixed) else {
            Issue.record("a fixed input is not resumed"); return
        }
        #expect(notices == ["input in.csv changed after the failure, but not before the bad record: resuming at byte 1000"])
        fixed.beforeCursorHash = "changed"
        #expect(Self.refusal(Self.resume(Self.checkpoint(.failed), input: fixed))?.1.contains("the bytes before the cursor (byte 1000) differ") == true)
        // The head counts only where it lies before the cursor.
        var headChanged = Self.sameInput
        headChanged.headHash = "other"
        guard case .resume = Self.resume(Self.checkpoint(.failed), input: headChanged) else {
            Issue.record("a head after the cursor was checked"); return
        }
    }

    @Test func anOutputThatNoLongerHoldsTheCheckpointsBytesIsRefused() {
        #expect(Self.refusal(Self.resume(Self.checkpoint(), output: nil))?.1.contains("output out.csv is missing, but the checkpoint records 400 bytes") == true)
        #expect(Self.refusal(Self.resume(Self.checkpoint(), output: ObservedOutput(length: 300, tailHash: nil)))?.1.contains("is shorter (300 bytes)") == true)
        #expect(Self.refusal(Self.resume(Self.checkpoint(), output: ObservedOutput(length: 400, tailHash: "x")))?.1.contains("was modified since the checkpoint") == true)
        var empty = Self.checkpoint()
        empty.output = OutputState(path: "out.csv", length: 0, tailHash: "", tailLength: 0)
        guard case .resume = Self.resume(empty, output: nil) else { Issue.record("an empty output must not be needed"); return }
    }

    @Test func aMissingQuarantineFileIsRefused() {
        var saved = Self.checkpoint()
        saved.quarantine = OutputState(path: "bad.csv", length: 30, tailHash: "q", tailLength: 30)
        let refused = Self.refusal(Self.resume(saved, quarantinePath: "bad.csv"))
        #expect(refused?.1.contains("quarantine file bad.csv is missing") == true)
        guard case .resume = Self.resume(saved, quarantine: ObservedOutput(length: 30, tailHash: "q"), quarantinePath: "bad.csv") else {
            Issue.record("not resumed"); return
        }
    }

    @Test func gzipInputMustStayGzip() {
        var gzipped = Self.sameInput
        gzipped.isGzip = true
        #expect(Self.refusal(Self.resume(Self.checkpoint(), input: gzipped))?.1.contains("is gzip now but was not") == true)
        var atStart = Self.checkpoint()
        atStart.cursor = Cursor(offset: 0, line: 1, inputOffset: 0, beforeHash: "before", beforeLength: 0,
                                rowsRead: 0, rowsWritten: 0, badRows: 0, file: 0)
        guard case .resume = Self.resume(atStart, input: gzipped) else { Issue.record("a job at its start must resume"); return }
    }

    @Test func anEndLostInARestartResumesFromTheSyncedState() {
        guard case .resume(_, let notices) = Self.resume(Self.ended("boot-0")) else { Issue.record("not resumed"); return }
        #expect(notices.count == 1 && notices[0].hasPrefix("the machine restarted after this job ended"))
    }

    @Test func aDamagedCheckpointIsRefused() {
        var saved = Self.checkpoint()
        saved.transformStates = [nil, nil]
        let refused = Self.refusal(Self.resume(saved))
        #expect(refused?.0 == 65)
        #expect(refused?.1.contains("is damaged (it holds 2 transform states for 1 transforms)") == true)
    }

    @Test func laterInputsAreComparedWithTheirIdentityWhenTheJobStarted() {
        #expect(InputChanges.sinceStart(Self.identity, now: Self.sameInput).isEmpty)
        var touched = Self.sameInput
        touched.modifiedNanoseconds = 78
        #expect(InputChanges.sinceStart(Self.identity, now: touched) == ["it was modified"])
        var rewritten = Self.sameInput
        rewritten.headHash = "x"
        #expect(InputChanges.sinceStart(Self.identity, now: rewritten) == ["its first 4096 bytes differ"])
    }
}
