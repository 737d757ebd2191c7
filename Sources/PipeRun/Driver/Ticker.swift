import Synchronization

/// A background thread that raises a flag every few milliseconds, so the row loop knows when to
/// look at the clock without reading it on every row, however slow or fast its rows are.
final class Ticker: @unchecked Sendable {
    private let flag = Atomic<Bool>(true)
    private let running = Atomic<Bool>(true)
    private let period: UInt64
    private var thread: pthread_t?

    init(periodNanoseconds: UInt64) {
        period = max(periodNanoseconds, 1_000_000)
        if case .success(let t) = startThread({ self.loop() }) {
            thread = t
        } else {
            flag.store(true, ordering: .relaxed)
        }
    }

    /// True at the first call and then once per period (always, if the thread could not start).
    @inline(__always)
    var fired: Bool {
        guard flag.load(ordering: .relaxed) else { return false }
        if thread != nil { flag.store(false, ordering: .relaxed) }
        return true
    }

    private func loop() {
        var request = timespec(tv_sec: Int(period / 1_000_000_000), tv_nsec: Int(period % 1_000_000_000))
        while running.load(ordering: .relaxed) {
            var remaining = timespec()
            nanosleep(&request, &remaining)
            flag.store(true, ordering: .relaxed)
        }
    }

    /// Stops the thread and waits for it.
    func stop() {
        running.store(false, ordering: .relaxed)
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }
}
