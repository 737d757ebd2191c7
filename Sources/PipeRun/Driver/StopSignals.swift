import Synchronization

/// The first stop signal received (SIGTERM, SIGINT or SIGHUP), or 0.
///
/// A C signal handler may only touch lock-free atomics; the driver's loop loads this at every
/// row boundary, which costs nothing measurable.
package let receivedStopSignal = Atomic<Int32>(0)
private let stopSignalCount = Atomic<Int>(0)
private let graceSecondsSetting = Atomic<UInt32>(25)
/// Process groups of helper children (exec: transforms), ended when pipe-run exits at once.
private let childGroup0 = Atomic<Int32>(0)
private let childGroup1 = Atomic<Int32>(0)
private let childGroup2 = Atomic<Int32>(0)
private let childGroup3 = Atomic<Int32>(0)

/// The signal handlers that make a job stop at the next row boundary.
///
/// The first SIGTERM, SIGINT or SIGHUP asks the driver to finish the current row, checkpoint
/// and exit with status 75, and starts the grace deadline (`alarm(2)`): if the row does not
/// finish in time, the process exits at once with status 75, leaving the previous checkpoint
/// valid. A second signal exits at once the same way. Handlers are installed without
/// `SA_RESTART`, so a read blocked on a pipe returns and notices the signal.
package enum StopSignals {
    /// Installs the handlers; `grace` is the deadline in seconds after the first signal.
    ///
    /// Called again (the command line installs them before it parses its arguments, the
    /// driver with the job's `--grace`), it only sets the new deadline, also for a signal
    /// already received. SIGINT and SIGHUP inherited as ignored stay ignored: a shell starts a
    /// background job with SIGINT ignored, and `nohup` starts one with SIGHUP ignored.
    package static func install(graceSeconds grace: Double) {
        // Touch the globals now: their lazy initialisation must not happen inside a handler.
        _ = receivedStopSignal.load(ordering: .relaxed)
        _ = stopSignalCount.load(ordering: .relaxed)
        _ = childGroup0.load(ordering: .relaxed)
        _ = childGroup1.load(ordering: .relaxed)
        _ = childGroup2.load(ordering: .relaxed)
        _ = childGroup3.load(ordering: .relaxed)
        let seconds = UInt32(max(1, min(grace.rounded(.up), 1e6)))
        graceSecondsSetting.store(seconds, ordering: .relaxed)

        setHandler(SIGALRM, handleDeadline)
        setHandler(SIGTERM, handleStop)
        for sig in [SIGINT, SIGHUP] where !isIgnored(sig) { setHandler(sig, handleStop) }
        // A parent may have left these blocked (the mask is inherited), and the command line
        // blocks them before main: unblock them. A signal that came meanwhile arrives now.
        var mask = sigset_t()
        sigemptyset(&mask)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGALRM] { sigaddset(&mask, sig) }
        sigprocmask(SIG_UNBLOCK, &mask, nil)
        if receivedStopSignal.load(ordering: .relaxed) != 0 && stopSignalCount.load(ordering: .relaxed) == 1 {
            alarm(seconds)
        }
        // A closed pipe on stdout becomes EPIPE (a clean stop); a file-size limit becomes EFBIG.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
    }

    /// Gives the stop signals their default action again, for a command that is not a job
    /// (`status`, `transforms`): one received since ``install(graceSeconds:)`` ends the process
    /// now, as it would have without the handlers.
    package static func restoreDefaultActions() {
        alarm(0)
        for sig in [SIGTERM, SIGINT, SIGHUP] where !isIgnored(sig) { signal(sig, SIG_DFL) }
        let received = receivedStopSignal.load(ordering: .relaxed)
        if received != 0 { raise(received) }
    }

    /// Whether `signal`'s disposition is to ignore it.
    private static func isIgnored(_ signal: Int32) -> Bool {
        var current = sigaction()
        sigaction(signal, nil, &current)
        #if canImport(Darwin)
        let handler = current.__sigaction_u.__sa_handler
        #else
        let handler = current.__sigaction_handler.sa_handler
        #endif
        guard let handler else { return false }
        return unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }

    /// Remembers a child's process group, so that an immediate exit (second signal, grace
    /// deadline) does not leave it running.
    package static func registerChildGroup(_ pgid: Int32) {
        _ = childGroup0.compareExchange(expected: 0, desired: pgid, ordering: .relaxed).exchanged
            || childGroup1.compareExchange(expected: 0, desired: pgid, ordering: .relaxed).exchanged
            || childGroup2.compareExchange(expected: 0, desired: pgid, ordering: .relaxed).exchanged
            || childGroup3.compareExchange(expected: 0, desired: pgid, ordering: .relaxed).exchanged
    }

    package static func unregisterChildGroup(_ pgid: Int32) {
        _ = childGroup0.compareExchange(expected: pgid, desired: 0, ordering: .relaxed)
        _ = childGroup1.compareExchange(expected: pgid, desired: 0, ordering: .relaxed)
        _ = childGroup2.compareExchange(expected: pgid, desired: 0, ordering: .relaxed)
        _ = childGroup3.compareExchange(expected: pgid, desired: 0, ordering: .relaxed)
    }

    /// The name of a signal number, e.g. `SIGTERM`.
    package static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }

    private static func setHandler(_ signal: Int32, _ handler: @convention(c) (Int32) -> Void) {
        var action = sigaction()
        #if canImport(Darwin)
        action.__sigaction_u.__sa_handler = handler
        #else
        action.__sigaction_handler.sa_handler = handler
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(signal, &action, nil)
    }
}

/// Sends SIGTERM to the registered children's process groups (async-signal-safe).
private func endChildren() {
    // No array here: a signal handler must not allocate.
    let g0 = childGroup0.load(ordering: .relaxed), g1 = childGroup1.load(ordering: .relaxed)
    let g2 = childGroup2.load(ordering: .relaxed), g3 = childGroup3.load(ordering: .relaxed)
    if g0 > 0 { kill(-g0, SIGTERM) }
    if g1 > 0 { kill(-g1, SIGTERM) }
    if g2 > 0 { kill(-g2, SIGTERM) }
    if g3 > 0 { kill(-g3, SIGTERM) }
}

private func writeToStandardError(_ message: StaticString) {
    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
}

private func handleStop(_ signal: Int32) {
    let previous = stopSignalCount.wrappingAdd(1, ordering: .relaxed).oldValue
    if previous == 0 {
        receivedStopSignal.store(signal, ordering: .relaxed)
        alarm(graceSecondsSetting.load(ordering: .relaxed))
    } else {
        writeToStandardError("pipe-run: second signal: exiting now; the last checkpoint stays valid, run the same command to resume\n")
        endChildren()
        _exit(75)
    }
}

private func handleDeadline(_ signal: Int32) {
    writeToStandardError("pipe-run: grace deadline passed before the current row finished: exiting now; the last checkpoint stays valid, run the same command to resume\n")
    endChildren()
    _exit(75)
}
