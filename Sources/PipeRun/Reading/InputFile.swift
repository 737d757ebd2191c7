/// An open input: a regular file (seekable, resumable) or standard input.
package final class InputFile {
    package let path: String
    package let fd: Int32
    package let isStandardInput: Bool
    package let status: stat

    /// Opens `path` for reading; `-` is standard input.
    package init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 0
            isStandardInput = true
        } else {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let err = errno
                let code: PipeRunError.Code = (err == ENOENT || err == ENOTDIR || err == EACCES) ? .noInput : .ioError
                throw PipeRunError(code, "cannot open input \(path): \(describe(errno: err))")
            }
            self.fd = fd
            isStandardInput = false
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw PipeRunError(.ioError, "cannot stat input \(path): \(describe(errno: errno))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw PipeRunError(.noInput, "input \(path) is a directory")
        }
        status = st
    }

    deinit {
        if !isStandardInput { close(fd) }
    }

    /// Whether the input can be resumed at a byte offset (a regular file).
    package var isSeekable: Bool {
        !isStandardInput && (status.st_mode & S_IFMT) == S_IFREG
    }

    /// The input's size in bytes (0 for pipes).
    package var size: Int64 { Int64(status.st_size) }

    /// The first bytes of the input, to tell gzip from plain text. For standard input they are
    /// consumed, and must be handed to the byte source as its prefix.
    package func sniff() throws -> [UInt8] {
        if isSeekable { return try read(at: 0, count: 2) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < 2 {
            let n = systemRead(fd, &byte, 1)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { throw ReadInterrupted() }
                throw PipeRunError(.ioError, "cannot read \(path): \(describe(errno: errno))")
            }
            bytes.append(byte)
        }
        return bytes
    }

    /// Reads up to `count` bytes at `offset` without moving the read position.
    package func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try preadAll(fd: fd, path: path, offset: offset, count: count)
    }
}

/// Reads up to `count` bytes at `offset` of `fd`, fewer only at the end of the file.
///
/// The corresponding C function is `pread`.
package func preadAll(fd: Int32, path: String, offset: Int64, count: Int) throws -> [UInt8] {
    guard count > 0 else { return [] }
    var result = [UInt8](repeating: 0, count: count)
    var done = 0
    try result.withUnsafeMutableBytes { buf in
        while done < count {
            let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw PipeRunError(.ioError, "cannot read \(path) at byte \(offset + Int64(done)): \(describe(errno: errno))")
            }
            done += n
        }
    }
    result.removeLast(count - done)
    return result
}

/// The text of a C `errno` value.
package func describe(errno err: Int32) -> String {
    String(cString: strerror(err))
}
