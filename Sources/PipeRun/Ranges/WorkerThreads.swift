/// Reports from the workers to the coordinator, who waits for them.
final class ReportQueue: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var items: [RangeWorker.Report] = []

    init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    func post(_ report: RangeWorker.Report) {
        pthread_mutex_lock(&mutex)
        items.append(report)
        pthread_cond_signal(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// The reports posted so far, waiting up to `timeoutNanoseconds` for one.
    func wait(timeoutNanoseconds: UInt64) -> [RangeWorker.Report] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if items.isEmpty {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let total = UInt64(now.tv_nsec) + timeoutNanoseconds
            var until = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
            pthread_cond_timedwait(&changed, &mutex, &until)
        }
        defer { items = [] }
        return items
    }
}

/// A fixed set of threads that run submitted work in order of submission.
final class WorkerThreads: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var work: [() -> Void] = []
    private var closed = false
    private var threads: [pthread_t] = []

    init(count: Int) throws {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<max(count, 1) {
            switch startThread({ self.loop() }) {
            case .success(let thread): threads.append(thread)
            case .failure(let error):
                finish()
                throw error
            }
        }
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    func submit(_ body: @escaping () -> Void) {
        pthread_mutex_lock(&mutex)
        work.append(body)
        pthread_cond_signal(&changed)
        pthread_mutex_unlock(&mutex)
    }

    private func loop() {
        while true {
            pthread_mutex_lock(&mutex)
            while work.isEmpty && !closed { pthread_cond_wait(&changed, &mutex) }
            if work.isEmpty {
                pthread_mutex_unlock(&mutex)
                return
            }
            let next = work.removeFirst()
            pthread_mutex_unlock(&mutex)
            next()
        }
    }

    /// Runs what was submitted, then ends the threads and waits for them.
    func finish() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }
}
