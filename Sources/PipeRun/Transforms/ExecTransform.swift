/// Runs a long-lived child process as a transform, in any language: `exec:'COMMAND ARGS'`.
///
/// The protocol is JSON lines. pipe-run first writes the input column names as a JSON array of
/// strings and reads one line back: the output column names, as a JSON array. Then, for each
/// row, it writes the row's fields as a JSON array of strings on one line, and reads exactly one
/// answer line: a JSON array (the output row; strings, numbers or null) or an empty line (drop
/// the row). Answers come back in order. Fields are passed as UTF-8 text; newlines, quotes and
/// other special characters are JSON-escaped, so every row is one line.
///
/// Up to 256 rows are in flight at once; before every checkpoint pipe-run waits for all their
/// answers, so a checkpoint only covers answered rows. A resumed job starts a new child. A
/// child that exits early, or answers something that is not a JSON array, stops the job (exit
/// status 65) with the line and byte offset of the row it was answering; the last checkpoint
/// stays valid. The child runs in its own process group (a Ctrl-C reaches pipe-run, which
/// finishes cleanly) and its standard error is pipe-run's. The child must flush its output after
/// each answer (Python: `print(..., flush=True)`), or pipe-run waits for answers it holds back.
///
/// A child may keep state between rows, so a job with `exec` runs one range of its input at a
/// time. `exec:row-local:COMMAND` declares that each answer depends on its row alone (the child
/// keeps nothing from one row to the next): ranges then run side by side (`--jobs`), each
/// through a child of its own, and their answers are joined in input order.
public final class ExecTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "exec", usage: "exec:[row-local:]COMMAND",
        summary: "pipe rows through a child process (JSON lines); row-local: each answer from its row alone"
    ) { argument in
        var command = Substring(argument)
        let rowLocal = command.hasPrefix(ExecTransform.rowLocalPrefix)
        if rowLocal { command = command.dropFirst(ExecTransform.rowLocalPrefix.count) }
        guard !command.allSatisfy({ $0 == " " }) else { throw PipeRunError(.usage, "exec: expected a command") }
        return ExecTransform(command: String(command), rowLocal: rowLocal)
    }

    /// What begins the argument of `exec:row-local:COMMAND`.
    static let rowLocalPrefix = "row-local:"

    let command: String
    /// Whether the user declared each answer to depend on its row alone.
    public let isRowLocal: Bool

    static let maxInFlight = 256
    /// The longest answer line accepted.
    static let maxAnswerBytes = 64 << 20
    private var scanned = 0
    private var pid: pid_t = 0
    private var toChild: Int32 = -1
    private var fromChild: Int32 = -1
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var received: [UInt8] = []
    private var receivedStart = 0
    private var inFlight: [(line: Int64, offset: Int64)] = []
    private var inFlightStart = 0
    private var columns = 0
    private var childEnded = false
    private let builder = RowBuilder()
    private var readBuffer = [UInt8](repeating: 0, count: 1 << 16)

    /// Runs `command` with `/bin/sh -c` when the job starts; `rowLocal` declares that each
    /// answer depends on its row alone, so that ranges of the input may run side by side.
    public init(command: String, rowLocal: Bool = false) {
        self.command = command
        isRowLocal = rowLocal
    }

    /// Row-local only when the user declares it: a child may keep state between rows.
    public var rangeSupport: RangeSupport { isRowLocal ? .rowLocal : .none }

    deinit {
        if toChild >= 0 { close(toChild) }
        if fromChild >= 0 { close(fromChild) }
        if pid > 0 && !childEnded {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == 0 {
                kill(-pid, SIGTERM)
                waitpid(pid, &status, 0)
            }
        }
    }

    public func start(input: Columns) throws -> Columns {
        try spawn()
        appendJSON(input.names.map { Array($0.utf8) })
        guard let answer = try nextAnswer(forRow: "the header") else {
            throw FatalTransformError("exec: '\(command)' answered the header with an empty line; it must answer with the output column names as a JSON array")
        }
        let names = answer.map { String(decoding: $0, as: UTF8.self) }
        guard !names.isEmpty else {
            throw FatalTransformError("exec: '\(command)' declared no output columns")
        }
        columns = names.count
        return Columns(names)
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        var fields: [[UInt8]] = []
        fields.reserveCapacity(row.count)
        for i in 0..<row.count { fields.append(Array(row[i].bytes)) }
        appendJSON(fields)
        inFlight.append((row.line, row.offset))
        try pump(emit: emit, until: { self.inFlight.count - self.inFlightStart < Self.maxInFlight })
    }

    public func willCheckpoint(emit: (Row) throws -> Void) throws {
        try pump(emit: emit, until: { self.inFlight.count == self.inFlightStart })
    }

    public func finish(emit: (Row) throws -> Void) throws {
        try pump(emit: emit, until: { self.inFlight.count == self.inFlightStart })
        close(toChild)
        toChild = -1
        // Every row is answered: anything more means answers and rows were out of step.
        while true {
            if let extra = try takeLine() {
                throw FatalTransformError("exec: '\(command)' wrote more answer lines than it was given rows: \(excerpt(extra))")
            }
            let n = readBuffer.withUnsafeMutableBytes { systemRead(fromChild, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            received.append(contentsOf: readBuffer[0..<n])
        }
        if receivedStart < received.count {
            throw FatalTransformError("exec: '\(command)' wrote more than its answers: \(excerpt(Array(received[receivedStart...])))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        childEnded = true
        StopSignals.unregisterChildGroup(pid)
    }

    // MARK: The child

    private func spawn() throws {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else {
            throw FatalTransformError("exec: cannot create pipes: \(describe(errno: errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        for fd in input + output { posix_spawn_file_actions_addclose(&actions, fd) }
        // Nothing else of ours: not the output (and its lock), nor a parent's pipes.
        for fd in openDescriptors() where fd > 2 && !(input + output).contains(fd) {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group; default signal handling and an empty mask, whatever ours are.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGPIPE, SIGXFSZ, SIGTERM, SIGINT, SIGHUP, SIGALRM] { sigaddset(&defaults, sig) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/sh", &actions, &attributes, argv, environ)
        close(input[0])
        close(output[1])
        guard rc == 0 else {
            close(input[1])
            close(output[0])
            throw FatalTransformError("exec: cannot start '\(command)': \(describe(errno: rc))")
        }
        pid = child
        StopSignals.registerChildGroup(child)
        toChild = input[1]
        fromChild = output[0]
        _ = fcntl(toChild, F_SETFL, fcntl(toChild, F_GETFL) | O_NONBLOCK)
        _ = fcntl(toChild, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fromChild, F_SETFD, FD_CLOEXEC)
    }

    /// This process's open file descriptors (from /proc/self/fd; none where it does not exist).
    private func openDescriptors() -> [Int32] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var fds: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), fd != own { fds.append(fd) }
        }
        return fds
    }

    /// Writes what is pending and reads answers, emitting them, until `done()` holds. Writing
    /// and reading are interleaved with `poll`, so neither pipe can fill up and deadlock.
    private func pump(emit: (Row) throws -> Void, until done: () -> Bool) throws {
        while true {
            try emitAnswers(emit: emit)
            if done() && pendingStart == pending.count { return }
            if done() && pending.count - pendingStart < 1 << 16 { return }
            var fds = [pollfd(fd: fromChild, events: Int16(POLLIN), revents: 0)]
            if pendingStart < pending.count { fds.append(pollfd(fd: toChild, events: Int16(POLLOUT), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                throw FatalTransformError("exec: poll failed: \(describe(errno: errno))")
            }
            if fds.count > 1 && fds[1].revents != 0 { try writePending() }
            if fds[0].revents != 0 { try readAvailable() }
        }
    }

    private func writePending() throws {
        let n = pending.withUnsafeBytes { systemWrite(toChild, $0.baseAddress! + pendingStart, $0.count - pendingStart) }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            throw childGone()
        }
        pendingStart += n
        if pendingStart == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
        }
    }

    private func readAvailable() throws {
        let n = readBuffer.withUnsafeMutableBytes { systemRead(fromChild, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw FatalTransformError("exec: cannot read from '\(command)': \(describe(errno: errno))")
        }
        if n == 0 { throw childGone() }
        received.append(contentsOf: readBuffer[0..<n])
    }

    private func childGone() -> FatalTransformError {
        var status: Int32 = 0
        var how = "closed its output"
        // It is probably exiting: give it a moment to say how.
        var reaped = false
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { reaped = true; break }
            usleep(10_000)
        }
        if reaped {
            childEnded = true
            how = (status & 0x7f) == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
        }
        return FatalTransformError("exec: '\(command)' \(how) before answering \(waitingFor)")
    }

    private var waitingFor: String {
        guard inFlightStart < inFlight.count else { return "the header" }
        let row = inFlight[inFlightStart]
        return "the row at line \(row.line), byte \(row.offset)"
    }

    /// Emits every complete answer line received so far.
    private func emitAnswers(emit: (Row) throws -> Void) throws {
        while inFlightStart < inFlight.count, let answer = try takeLine() {
            let row = inFlight[inFlightStart]
            inFlightStart += 1
            if inFlightStart == inFlight.count {
                inFlight.removeAll(keepingCapacity: true)
                inFlightStart = 0
            }
            if answer.isEmpty { continue }
            guard let fields = parseJSONArray(answer) else {
                throw FatalTransformError("exec: '\(command)' answered the row at line \(row.line), byte \(row.offset) with something that is not a JSON array: \(excerpt(answer))")
            }
            guard fields.count == columns else {
                throw FatalTransformError("exec: '\(command)' answered the row at line \(row.line), byte \(row.offset) with \(fields.count) fields; it declared \(columns) columns")
            }
            builder.reset()
            for f in fields { f.withUnsafeBytes { builder.appendCopy($0) } }
            try builder.withRow(line: row.line, offset: row.offset) { try emit($0) }
        }
    }

    /// Blocks for the header's answer.
    private func nextAnswer(forRow what: String) throws -> [[UInt8]]? {
        while true {
            if let line = try takeLine() {
                if line.isEmpty { return nil }
                guard let fields = parseJSONArray(line) else {
                    throw FatalTransformError("exec: '\(command)' answered \(what) with something that is not a JSON array: \(excerpt(line))")
                }
                return fields
            }
            if pendingStart < pending.count {
                try pump(emit: { _ in }, until: { self.pendingStart == self.pending.count })
                continue
            }
            try readAvailable()
        }
    }

    private func takeLine() throws -> [UInt8]? {
        // Look for the line end only in bytes not looked at before: long answers stay linear.
        guard let end = received[max(receivedStart, scanned)...].firstIndex(of: 10) else {
            scanned = received.count
            if received.count - receivedStart > Self.maxAnswerBytes {
                throw FatalTransformError("exec: '\(command)' answered \(waitingFor) with a line longer than \(Self.maxAnswerBytes) bytes")
            }
            if receivedStart > 0 {
                received.removeFirst(receivedStart)
                scanned -= receivedStart
                receivedStart = 0
            }
            return nil
        }
        var line = Array(received[receivedStart..<end])
        if line.last == 13 { line.removeLast() }
        receivedStart = end + 1
        return line
    }

    private func excerpt(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(60), as: UTF8.self)
        return bytes.count > 60 ? text + "..." : text
    }

    // MARK: JSON

    private func appendJSON(_ fields: [[UInt8]]) {
        pending.append(UInt8(ascii: "["))
        for (i, field) in fields.enumerated() {
            if i > 0 { pending.append(UInt8(ascii: ",")) }
            pending.append(UInt8(ascii: "\""))
            for c in field {
                switch c {
                case 34: pending.append(contentsOf: [92, 34])
                case 92: pending.append(contentsOf: [92, 92])
                case 10: pending.append(contentsOf: [92, 110])
                case 13: pending.append(contentsOf: [92, 114])
                case 9: pending.append(contentsOf: [92, 116])
                case 0..<32:
                    let hex = Array("0123456789abcdef".utf8)
                    pending.append(contentsOf: [92, 117, 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]])
                default: pending.append(c)
                }
            }
            pending.append(UInt8(ascii: "\""))
        }
        pending.append(contentsOf: [UInt8(ascii: "]"), 10])
    }
}

/// Parses a JSON array of strings, numbers, booleans or nulls into byte strings (numbers and
/// booleans as written, null as empty); nil for anything else.
func parseJSONArray(_ text: [UInt8]) -> [[UInt8]]? {
    var i = 0
    let n = text.count
    func skipSpace() { while i < n && (text[i] == 32 || text[i] == 9 || text[i] == 13 || text[i] == 10) { i += 1 } }
    func hex4() -> UInt32? {
        guard i + 4 <= n else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = text[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: return nil
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }
    func string() -> [UInt8]? {
        guard i < n && text[i] == 34 else { return nil }
        i += 1
        var out: [UInt8] = []
        while i < n {
            let c = text[i]
            if c == 34 { i += 1; return out }
            if c == 92 {
                i += 1
                guard i < n else { return nil }
                let e = text[i]
                i += 1
                switch e {
                case 34, 92, 47: out.append(e)
                case 98: out.append(8)
                case 102: out.append(12)
                case 110: out.append(10)
                case 114: out.append(13)
                case 116: out.append(9)
                case 117:
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar), i + 1 < n, text[i] == 92, text[i + 1] == 117 {
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
                default: return nil
                }
                continue
            }
            out.append(c)
            i += 1
        }
        return nil
    }
    skipSpace()
    guard i < n && text[i] == 91 else { return nil }
    i += 1
    var values: [[UInt8]] = []
    skipSpace()
    if i < n && text[i] == 93 {
        i += 1
        skipSpace()
        return i == n ? values : nil
    }
    while true {
        skipSpace()
        guard i < n else { return nil }
        if text[i] == 34 {
            guard let s = string() else { return nil }
            values.append(s)
        } else {
            let start = i
            while i < n && text[i] != 44 && text[i] != 93 && text[i] != 32 { i += 1 }
            let word = Array(text[start..<i])
            if word == Array("null".utf8) {
                values.append([])
            } else if word == Array("true".utf8) || word == Array("false".utf8)
                        || (!word.isEmpty && Double(String(decoding: word, as: UTF8.self)) != nil) {
                values.append(word)
            } else {
                return nil
            }
        }
        skipSpace()
        guard i < n else { return nil }
        if text[i] == 44 { i += 1; continue }
        if text[i] == 93 {
            i += 1
            skipSpace()
            return i == n ? values : nil
        }
        return nil
    }
}

