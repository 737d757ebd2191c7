/// One field of a row: a view of bytes owned by the driver, valid only during the call that
/// received it.
///
/// Reading a field as bytes costs nothing; ``string`` decodes UTF-8 and allocates when the field
/// is longer than 15 bytes. Keep strings out of the per-row path where bytes will do.
public struct Field: @unchecked Sendable {
    /// The field's bytes, without quotes and with `""` already turned into `"`.
    public let bytes: UnsafeRawBufferPointer

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// An empty field.
    public static let empty = Field(UnsafeRawBufferPointer(start: nil, count: 0))

    /// The number of bytes in the field.
    @inlinable
    public var count: Int { bytes.count }

    /// Whether the field has no bytes.
    @inlinable
    public var isEmpty: Bool { bytes.count == 0 }

    /// The field decoded as UTF-8 (invalid sequences become U+FFFD).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Whether the field's bytes equal `other`'s.
    @inlinable
    public func equals(_ other: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == other.count else { return false }
        if bytes.count == 0 { return true }
        return memcmp(bytes.baseAddress!, other.baseAddress!, bytes.count) == 0
    }

    /// Whether the field's bytes equal the UTF-8 bytes of `other`.
    @inlinable
    public func equals(_ other: [UInt8]) -> Bool {
        other.withUnsafeBytes { equals($0) }
    }

    /// The field parsed as a decimal number (leading and trailing spaces allowed), or nil.
    public var double: Double? {
        let n = bytes.count
        if n == 0 || n > 64 { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> Double? in
            let base = buf.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: bytes.baseAddress!, byteCount: n)
            base[n] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(base, &end)
            guard let end, end != base else { return nil }
            var p = end
            while p.pointee == 0x20 || p.pointee == 0x09 { p += 1 }
            return p.pointee == 0 ? value : nil
        }
    }
}
