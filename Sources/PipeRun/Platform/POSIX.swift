// Thin wrappers that name the C calls unambiguously (a type's own `read` or `write` method
// would otherwise shadow them) and keep the platform imports in one place.
#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Musl)
@_exported import Musl
#elseif canImport(Darwin)
@_exported import Darwin
#endif

/// The corresponding C function is `read`.
@inline(__always)
package func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// The corresponding C function is `write`.
@inline(__always)
package func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR; returns `errno` on failure.
package func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var done = 0
    while done < bytes.count {
        let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        done += n
    }
    return nil
}

/// Writes all of `bytes` to `fd` at `offset`, retrying short writes and EINTR; returns `errno`
/// on failure. The corresponding C function is `pwrite`.
package func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Int32? {
    var done = 0
    while done < bytes.count {
        let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        done += n
    }
    return nil
}

/// Flushes a file's data to the disk; a no-op for pipes and terminals.
///
/// The corresponding C function is `fdatasync` (`fsync` where it does not exist).
package func syncData(_ fd: Int32) -> Int32? {
    #if canImport(Darwin)
    let r = fsync(fd)
    #else
    let r = fdatasync(fd)
    #endif
    if r == 0 { return nil }
    let err = errno
    return (err == EINVAL || err == EROFS) ? nil : err
}

/// This boot of the machine, as Linux names it (a UUID that changes at every restart); nil
/// where there is no such name.
package func currentBootID() -> String? {
    let fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return nil }
    let id = String(decoding: buffer[0..<n].filter { $0 > 32 }, as: UTF8.self)
    return id.isEmpty ? nil : id
}

/// Monotonic time in nanoseconds.
@inline(__always)
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Runs `body` on a new thread; returns the thread (to join) or, when it cannot start, the
/// error number. The corresponding C function is `pthread_create`.
package func startThread(_ body: @escaping () -> Void) -> Result<pthread_t, PipeRunError> {
    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return .failure(PipeRunError(.ioError, "cannot start a thread: \(describe(errno: rc))"))
    }
    return .success(thread)
}
