#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CScan

/// Reads and atomically replaces a checkpoint file.
///
/// A write goes to `PATH.tmp`, is synced, renamed over `PATH`, and the directory is synced: a
/// crash at any instant leaves either the old checkpoint or the new one, never a torn one.
package struct CheckpointStore: Sendable {
    package let path: String

    package init(path: String) {
        self.path = path
    }

    /// The default checkpoint path for an output file.
    package static func defaultPath(forOutput output: String) -> String {
        output + ".checkpoint"
    }

    package var exists: Bool {
        access(path, F_OK) == 0
    }

    /// Reads the checkpoint, or nil when there is none; a completion recorded without waiting
    /// for the disk counts only in the boot it happened in (see ``Checkpoint/completion``).
    package func load() throws -> Checkpoint? {
        try loadRecorded()?.resolved(bootID: currentBootID())
    }

    /// Reads the checkpoint as it is in the file.
    package func loadRecorded() throws -> Checkpoint? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw PipeRunError(.ioError, "cannot open checkpoint \(path): \(describe(errno: errno))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw PipeRunError(.ioError, "cannot read checkpoint \(path): \(describe(errno: errno))")
            }
            bytes.append(contentsOf: chunk[0..<n])
        }
        struct Header: Decodable { var format: String?; var version: Int? }
        let header = try? JSONDecoder().decode(Header.self, from: Data(bytes))
        guard let header, header.format == Checkpoint.formatName else {
            throw PipeRunError(.dataError, "\(path) is not a pipe-run checkpoint (damaged?); run with --restart to start over")
        }
        guard let version = header.version, Checkpoint.readableVersions.contains(version) else {
            throw PipeRunError(.dataError, "checkpoint \(path) has format version \(header.version ?? -1), this pipe-run reads versions \(Checkpoint.readableVersions.lowerBound) to \(Checkpoint.readableVersions.upperBound); finish the job with the pipe-run that started it, or --restart")
        }
        do {
            return try JSONDecoder().decode(Checkpoint.self, from: Data(bytes))
        } catch {
            throw PipeRunError(.dataError, "checkpoint \(path) is damaged (\(error)); run with --restart to start over")
        }
    }

    /// Atomically replaces the checkpoint with `checkpoint`. With `durably` false, the new
    /// checkpoint is written to the disk (its data, not the file system's journal) before the
    /// rename, but not synced: after a power loss the file is the old checkpoint or the new
    /// one, never a torn one, yet the save does not wait for the disk's cache or for other
    /// files' writes that a journal commit would wait for.
    package func save(_ checkpoint: Checkpoint, durably: Bool = true) throws {
        var checkpoint = checkpoint
        checkpoint.version = checkpoint.ranges == nil ? Checkpoint.currentVersion : Checkpoint.rangedVersion
        checkpoint.writerVersion = pipeRunVersion
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(checkpoint)
        data.append(10)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipeRunError(.cannotCreate, "cannot write checkpoint \(tmp): \(describe(errno: errno))")
        }
        let writeError = data.withUnsafeBytes { writeAll(fd, $0) }
        var syncError: Int32? = nil
        if writeError == nil {
            if durably {
                syncError = fsync(fd) == 0 ? nil : errno
            } else {
                syncError = cscan_finish_writeback(fd, 0, Int64(data.count)) == 0 ? nil : errno
            }
        }
        close(fd)
        if let err = writeError ?? syncError {
            unlink(tmp)
            throw PipeRunError(.ioError, "cannot write checkpoint \(tmp): \(describe(errno: err))")
        }
        guard rename(tmp, path) == 0 else {
            let err = errno
            unlink(tmp)
            throw PipeRunError(.ioError, "cannot rename \(tmp) to \(path): \(describe(errno: err))")
        }
        if durably { syncDirectory(of: path) }
    }

    /// Deletes the checkpoint.
    package func remove() throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw PipeRunError(.ioError, "cannot remove checkpoint \(path): \(describe(errno: errno))")
        }
        unlink(path + ".tmp")
    }
}

/// Syncs the directory holding `path`, so that a rename in it survives a power loss.
package func syncDirectory(of path: String) {
    var dir = "."
    if let slash = path.lastIndex(of: "/") {
        dir = slash == path.startIndex ? "/" : String(path[..<slash])
    }
    let fd = open(dir, O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
        fsync(fd)
        close(fd)
    }
}

/// The current UTC time as ISO 8601, e.g. `2026-11-29T19:25:39Z`.
package func isoTimestamp() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
