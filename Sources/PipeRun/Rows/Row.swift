/// One row on its way through the transforms: its fields, and where its record started in the
/// input (for error messages).
///
/// A row and its fields are views valid only during the call that received them; copy what
/// you need to keep (``Field/string`` or `Array(field.bytes)`).
public struct Row: @unchecked Sendable {
    @usableFromInline
    let fields: UnsafeBufferPointer<Field>

    /// The 1-based line number where the row's input record starts.
    public let line: Int64
    /// The byte offset in the input where the row's record starts.
    public let offset: Int64
    /// The input record's bytes as read (quotes and line end included), for a row that comes
    /// straight from the input; nil for a row a transform built.
    public let raw: UnsafeRawBufferPointer?
    /// Whether ``raw`` is exactly what writing these fields in the input's dialect gives
    /// (quotes only around fields that need them, LF line end): the writer may then copy the
    /// record whole.
    @usableFromInline
    let isVerbatim: Bool

    @inlinable
    public init(fields: UnsafeBufferPointer<Field>, line: Int64, offset: Int64, raw: UnsafeRawBufferPointer? = nil) {
        self.fields = fields
        self.line = line
        self.offset = offset
        self.raw = raw
        isVerbatim = false
    }

    @inlinable
    init(fields: UnsafeBufferPointer<Field>, line: Int64, offset: Int64, verbatim raw: UnsafeRawBufferPointer) {
        self.fields = fields
        self.line = line
        self.offset = offset
        self.raw = raw
        isVerbatim = true
    }

    /// The number of fields.
    @inlinable
    public var count: Int { fields.count }

    /// The field at `index`, or an empty field past the end of a short row.
    @inlinable
    public subscript(index: Int) -> Field {
        index < fields.count ? fields[index] : .empty
    }

    /// The row's fields, in order.
    @inlinable
    public var allFields: UnsafeBufferPointer<Field> { fields }
}

/// Builds rows whose fields come from several places (other rows, new text) without
/// allocating once it has warmed up. Keep one per transform and reuse it.
public final class RowBuilder {
    private var storage: UnsafeMutableRawPointer
    private var storageCapacity: Int
    private var used = 0
    // Each field as (start in storage or nil for an outside view, count, outside view).
    private var parts: [(local: Int, count: Int, outside: UnsafeRawBufferPointer?)] = []
    private var fields: UnsafeMutablePointer<Field>
    private var fieldCapacity: Int

    public init() {
        storageCapacity = 4096
        storage = .allocate(byteCount: storageCapacity, alignment: 16)
        fieldCapacity = 16
        fields = .allocate(capacity: fieldCapacity)
        parts.reserveCapacity(16)
    }

    deinit {
        storage.deallocate()
        fields.deallocate()
    }

    /// Forgets the fields appended so far.
    public func reset() {
        used = 0
        parts.removeAll(keepingCapacity: true)
    }

    /// Appends a view of an existing field; the field must stay valid until the row is emitted.
    public func append(_ field: Field) {
        parts.append((0, field.count, field.bytes))
    }

    /// Appends a copy of `text`'s UTF-8 bytes.
    public func append(_ text: String) {
        var text = text
        text.withUTF8 { appendCopy(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a copy of `bytes`.
    public func appendCopy(_ bytes: UnsafeRawBufferPointer) {
        if used + bytes.count > storageCapacity {
            var newCapacity = storageCapacity * 2
            while newCapacity < used + bytes.count { newCapacity *= 2 }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            grown.copyMemory(from: storage, byteCount: used)
            storage.deallocate()
            storage = grown
            storageCapacity = newCapacity
        }
        if bytes.count > 0 {
            (storage + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        parts.append((used, bytes.count, nil))
        used += bytes.count
    }

    /// Calls `body` with a row made of the appended fields.
    public func withRow<R>(line: Int64 = 0, offset: Int64 = 0, _ body: (Row) throws -> R) rethrows -> R {
        if parts.count > fieldCapacity {
            fields.deallocate()
            fieldCapacity = parts.count * 2
            fields = .allocate(capacity: fieldCapacity)
        }
        for (i, part) in parts.enumerated() {
            let view = part.outside ?? UnsafeRawBufferPointer(start: storage + part.local, count: part.count)
            (fields + i).initialize(to: Field(view))
        }
        return try body(Row(fields: UnsafeBufferPointer(start: fields, count: parts.count), line: line, offset: offset))
    }
}
