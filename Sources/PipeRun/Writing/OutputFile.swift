/// The job's output: a file opened without truncation and locked, so that a second run of the
/// same job is refused before anything is changed; or standard output.
package final class OutputFile {
    package let path: String
    package let fd: Int32
    package let isStandardOutput: Bool
    /// False for devices and pipes (`/dev/null`, a FIFO), which cannot be cut back.
    package let truncatable: Bool

    /// Opens (creating it if needed, never truncating) and locks `path`; `-` is standard output.
    package init(path: String, truncatable: Bool = true) throws {
        self.path = path
        if path == "-" {
            fd = 1
            isStandardOutput = true
            self.truncatable = false
            return
        }
        isStandardOutput = false
        self.truncatable = truncatable
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipeRunError(.cannotCreate, "cannot open output \(path): \(describe(errno: errno))")
        }
        self.fd = fd
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
        if !isStandardOutput { close(fd) }
    }

    /// The current length of the file.
    package func length() throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw PipeRunError(.ioError, "cannot stat output \(path): \(describe(errno: errno))")
        }
        return Int64(st.st_size)
    }

    /// Cuts the file to `length` bytes and places the write position there.
    package func truncate(to length: Int64) throws {
        guard truncatable else { return }
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw PipeRunError(.ioError, "cannot truncate output \(path) to \(length) bytes: \(describe(errno: errno))")
        }
        guard lseek(fd, off_t(length), SEEK_SET) >= 0 else {
            throw PipeRunError(.ioError, "cannot seek output \(path): \(describe(errno: errno))")
        }
    }

    /// Writes all of `bytes` at the current position.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let err = writeAll(fd, bytes) {
            if err == EPIPE { throw OutputClosed() }
            throw PipeRunError(.ioError, "cannot write output \(path): \(describe(errno: err))")
        }
    }

    /// Flushes written data to the disk.
    package func sync() throws {
        if !truncatable { return }
        if let err = syncData(fd) {
            throw PipeRunError(.ioError, "cannot sync output \(path): \(describe(errno: err))")
        }
    }
}

/// The reader of standard output went away (`pipe-run ... | head`): a clean stop.
public struct OutputClosed: Error {}
