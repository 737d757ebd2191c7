import Synchronization

/// The first stop signal received (SIGTERM, SIGINT or SIGHUP), or 0.
///
/// A C signal handler may only touch lock-free atomics; the driver's loop loads this at every
/// row boundary, which costs nothing measurable.
package let receivedStopSignal = Atomic<Int32>(0)
private let stopSignalCount = Atomic<Int>(0)
private let graceSecondsSetting = Atomic<UInt32>(25)

/// The signal handlers that make a job stop at the next row boundary.
///
/// The first SIGTERM, SIGINT or SIGHUP asks the driver to finish the current row, checkpoint
/// and exit with status 75, and starts the grace deadline (`alarm(2)`): if the row does not
/// finish in time, the process exits at once with status 75, leaving the previous checkpoint
/// valid. A second signal exits at once the same way. Handlers are installed without
/// `SA_RESTART`, so a read blocked on a pipe returns and notices the signal.
package enum StopSignals {
    /// Installs the handlers; `grace` is the deadline in seconds after the first signal.
    package static func install(graceSeconds grace: Double) {
        // Touch the globals now: their lazy initialisation must not happen inside a handler.
        _ = receivedStopSignal.load(ordering: .relaxed)
        _ = stopSignalCount.load(ordering: .relaxed)
        graceSecondsSetting.store(UInt32(max(1, min(grace.rounded(.up), 1e6))), ordering: .relaxed)

        setHandler(SIGTERM, handleStop)
        setHandler(SIGINT, handleStop)
        setHandler(SIGHUP, handleStop)
        setHandler(SIGALRM, handleDeadline)
        // A parent may have left these blocked (the mask is inherited): unblock them.
        var mask = sigset_t()
        sigemptyset(&mask)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGALRM] { sigaddset(&mask, sig) }
        sigprocmask(SIG_UNBLOCK, &mask, nil)
        // A closed pipe on stdout becomes EPIPE (a clean stop); a file-size limit becomes EFBIG.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
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
        _exit(75)
    }
}

private func handleDeadline(_ signal: Int32) {
    writeToStandardError("pipe-run: grace deadline passed before the current row finished: exiting now; the last checkpoint stays valid, run the same command to resume\n")
    _exit(75)
}
