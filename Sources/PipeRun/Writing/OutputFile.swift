/// The job's output: a file opened without truncation and locked, so that a second run of the
/// same job is refused before anything is changed; or standard output.
package final class OutputFile {
    package let path: String
    package let fd: Int32
    package let isStandardOutput: Bool
    /// False for devices and pipes (`/dev/null`, a FIFO), which cannot be cut back.
    package let truncatable: Bool
    /// For a regular file: the thread that writes, behind the caller.
    private var behind: WriteBehind?

    /// Opens (creating it if needed, never truncating) and locks `path`; `-` is standard output.
    package convenience init(path: String, truncatable: Bool = true) throws {
        try self.init(path: path, truncatable: truncatable, flags: O_CREAT)
    }

    /// Opens and locks `path` if it exists (`-` is standard output); nil when it does not, so
    /// that a run that is refused creates nothing.
    package static func existing(path: String, truncatable: Bool = true) throws -> OutputFile? {
        do {
            return try OutputFile(path: path, truncatable: truncatable, flags: 0)
        } catch let error as CannotOpen where error.errno == ENOENT {
            return nil
        }
    }

    /// Creates `path`, which must not exist, and locks it: a file that appeared since the run
    /// found none belongs to another run of the job started meanwhile. A symbolic link to a
    /// file not there yet is followed, as `open` does.
    package static func creating(path: String, truncatable: Bool = true) throws -> OutputFile {
        do {
            return try OutputFile(path: path, truncatable: truncatable, flags: O_CREAT | O_EXCL)
        } catch let error as CannotOpen where error.errno == EEXIST {
            var st = stat()
            if lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK {
                return try OutputFile(path: path, truncatable: truncatable, flags: O_CREAT)
            }
            throw PipeRunError(.interrupted, "\(path) was created by another run while this one started; try again when it has stopped")
        }
    }

    private struct CannotOpen: Error {
        var errno: Int32
    }

    private init(path: String, truncatable: Bool, flags: Int32) throws {
        self.path = path
        if path == "-" {
            fd = 1
            isStandardOutput = true
            self.truncatable = false
            return
        }
        isStandardOutput = false
        self.truncatable = truncatable
        let fd = open(path, O_RDWR | O_CLOEXEC | flags, 0o644)
        guard fd >= 0 else {
            let err = errno
            if err == ENOENT && flags & O_CREAT == 0 || err == EEXIST && flags & O_EXCL != 0 { throw CannotOpen(errno: err) }
            throw PipeRunError(.cannotCreate, "cannot open output \(path): \(describe(errno: err))")
        }
        self.fd = fd
        if truncatable { behind = WriteBehind(fd: fd, flushFD: open(path, O_RDONLY | O_CLOEXEC)) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            close(fd)
            if err == EWOULDBLOCK {
                throw PipeRunError(.interrupted, "another pipe-run is running this job (output \(path) is locked); try again when it has stopped")
            }
            throw PipeRunError(.cannotCreate, "cannot lock output \(path): \(describe(errno: err))")
        }
    }

    deinit {
        behind?.stop()
        if !isStandardOutput { close(fd) }
    }

    /// The current length of the file.
    package func length() throws -> Int64 {
        try drain()
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw PipeRunError(.ioError, "cannot stat output \(path): \(describe(errno: errno))")
        }
        return Int64(st.st_size)
    }

    /// Cuts the file to `length` bytes and places the write position there.
    package func truncate(to length: Int64) throws {
        guard truncatable else { return }
        try drain()
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw PipeRunError(.ioError, "cannot truncate output \(path) to \(length) bytes: \(describe(errno: errno))")
        }
        guard lseek(fd, off_t(length), SEEK_SET) >= 0 else {
            throw PipeRunError(.ioError, "cannot seek output \(path): \(describe(errno: errno))")
        }
        behind?.moved(to: length)
    }

    /// Writes all of `bytes` at the current position (for a regular file, on the writing
    /// thread: an error may show at a later call, at the latest at ``drain()``).
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let err = behind.map({ $0.append(bytes) }) ?? writeAll(fd, bytes) {
            throw writeError(err)
        }
    }

    /// Waits until everything written is in the file.
    package func drain() throws {
        if let err = behind?.drain() { throw writeError(err) }
    }

    private func writeError(_ err: Int32) -> any Error {
        if err == EPIPE { return OutputClosed() }
        return PipeRunError(.ioError, "cannot write output \(path): \(describe(errno: err))")
    }

    /// Starts keeping a CRC-32 of the bytes written to a regular file (see ``checksum()``).
    package func keepChecksum() {
        behind?.keepChecksum()
    }

    /// The CRC-32 of the bytes written since the last call (or since ``keepChecksum()`` or
    /// ``truncate(to:)``), once they are in the file; 0 for standard output and devices.
    package func checksum() throws -> UInt32 {
        try drain()
        return behind?.takeChecksum() ?? 0
    }

    /// Waits until everything written is in the file and stops having it flushed to the disk;
    /// throws the error of a write or flush (the last chance to see it without syncing).
    package func stopFlushing() throws {
        try drain()
        if let err = behind?.stopFlushing() { throw writeError(err) }
    }

    /// Flushes written data to the disk.
    package func sync() throws {
        if !truncatable { return }
        try drain()
        if let err = syncData(fd) {
            throw PipeRunError(.ioError, "cannot sync output \(path): \(describe(errno: err))")
        }
    }
}

/// The reader of standard output went away (`pipe-run ... | head`): a clean stop.
public struct OutputClosed: Error {}
