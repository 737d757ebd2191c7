import Synchronization

/// A background thread that raises a flag every few milliseconds, so the row loop knows when to
/// look at the clock without reading it on every row, however slow or fast its rows are.
final class Ticker: @unchecked Sendable {
    private let flag = Atomic<Bool>(true)
    private let period: UInt64
    private var thread: pthread_t?
    /// Guards `running`; the thread waits on `wake` between ticks, so that ``stop()`` ends it
    /// at once instead of after its sleep.
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var running = true

    init(periodNanoseconds: UInt64) {
        period = max(periodNanoseconds, 1_000_000)
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&wake, &attributes)
        pthread_condattr_destroy(&attributes)
        if case .success(let t) = startThread({ self.loop() }) {
            thread = t
        } else {
            flag.store(true, ordering: .relaxed)
        }
    }

    deinit {
        pthread_cond_destroy(&wake)
        pthread_mutex_destroy(&mutex)
    }

    /// True at the first call and then once per period (always, if the thread could not start).
    @inline(__always)
    var fired: Bool {
        guard flag.load(ordering: .relaxed) else { return false }
        if thread != nil { flag.store(false, ordering: .relaxed) }
        return true
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while running {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let total = UInt64(now.tv_nsec) + period
            var until = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
            pthread_cond_timedwait(&wake, &mutex, &until)
            flag.store(true, ordering: .relaxed)
        }
        pthread_mutex_unlock(&mutex)
    }

    /// Stops the thread and waits for it.
    func stop() {
        pthread_mutex_lock(&mutex)
        running = false
        pthread_cond_signal(&wake)
        pthread_mutex_unlock(&mutex)
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }
}
