#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One line of JSON per event (started, resumed, checkpoint, interrupted, bad-row, completed,
/// failed), appended to a file or written to standard output, for log pipelines and dashboards.
///
/// Events are appended as they happen: after a crash, the events since the last checkpoint
/// are there once, and the resumed run writes its own.
final class EventLog {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 1
            return
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipeRunError(.cannotCreate, "cannot open the events file \(path): \(describe(errno: errno))")
        }
        self.fd = fd
    }

    deinit {
        if fd != 1 { close(fd) }
    }

    struct Event: Encodable {
        var event: String
        var time: String
        var runSeconds: Double
        var offset: Int64
        var line: Int64
        var rowsRead: Int64
        var rowsWritten: Int64
        var badRows: Int64
        var percent: Double?
        var reason: String?
        var badLine: Int64?
        var badOffset: Int64?
        var outputLength: Int64?
    }

    func write(_ event: Event) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(event) else { return }
        data.append(10)
        data.withUnsafeBytes { _ = writeAll(fd, $0) }
    }
}
