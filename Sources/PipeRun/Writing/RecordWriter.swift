/// Formats rows into a large buffer and writes it to the output in big blocks.
///
/// CSV and TSV fields are quoted only when they must be (RFC 4180 minimal quoting: a field
/// holding the delimiter, a quote, CR or LF; and a lone empty field, so the row is not a blank
/// line); records end with LF. In `lines` format, each row's single field is written as is.
package final class RecordWriter {
    let sink: any OutputSink
    let format: RecordFormat
    let delimiter: UInt8
    @exclusivity(unchecked) private var buffer: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var used = 0
    /// Where the current input record's output starts in the buffer: bytes after it are kept
    /// in memory until the record is done, so a failed record can be taken back.
    @exclusivity(unchecked) private var recordStart = 0
    private let special: UnsafeMutablePointer<UInt8>

    package init(sink: any OutputSink, format: RecordFormat, delimiter: UInt8, bufferSize: Int = 1 << 20) {
        self.sink = sink
        self.format = format
        self.delimiter = delimiter
        capacity = bufferSize
        buffer = .allocate(capacity: capacity)
        special = .allocate(capacity: 256)
        special.initialize(repeating: 0, count: 256)
        special[Int(delimiter)] = 1
        special[10] = 1
        special[13] = 1
        special[34] = 1
    }

    deinit {
        buffer.deallocate()
        special.deallocate()
    }

    /// Hands the buffered bytes to the sink.
    package func flush() throws {
        guard used > 0 else { return }
        try sink.write(UnsafeRawBufferPointer(start: buffer, count: used))
        used = 0
        recordStart = 0
    }

    /// Marks the start of the output of the next input record.
    @inline(__always)
    package func beginRecord() {
        recordStart = used
    }

    /// Takes back what was written since ``beginRecord()``.
    package func discardRecord() {
        used = recordStart
    }

    @inline(__always)
    private func reserve(_ n: Int) throws {
        if capacity - used >= n { return }
        // Hand over what earlier records wrote; keep the current record's bytes.
        if recordStart > 0 {
            try sink.write(UnsafeRawBufferPointer(start: buffer, count: recordStart))
            let pending = used - recordStart
            if pending > 0 { memmove(buffer, buffer + recordStart, pending) }
            used = pending
            recordStart = 0
        }
        if capacity - used < n {
            var newCapacity = capacity * 2
            while newCapacity - used < n { newCapacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: buffer, count: used)
            buffer.deallocate()
            buffer = grown
            capacity = newCapacity
        }
    }

    /// Appends raw bytes (a header or a record copied through).
    package func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        try reserve(bytes.count)
        if bytes.count > 0 {
            UnsafeMutableRawPointer(buffer + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        used += bytes.count
    }

    /// Whether rows straight from the input may be copied whole (the output's dialect is the
    /// input's).
    @exclusivity(unchecked) package var copiesVerbatimRows = false

    /// Appends one row.
    package func write(_ row: Row) throws {
        if copiesVerbatimRows && row.isVerbatim, let raw = row.raw, raw.count > 0 {
            try reserve(raw.count + 1)
            UnsafeMutableRawPointer(buffer + used).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            used += raw.count
            if buffer[used - 1] != 10 {
                buffer[used] = 10
                used += 1
            }
            return
        }
        let fields = row.allFields
        if format == .lines {
            let f = fields.isEmpty ? Field.empty : fields[0]
            try reserve(f.count + 1)
            if f.count > 0 { UnsafeMutableRawPointer(buffer + used).copyMemory(from: f.bytes.baseAddress!, byteCount: f.count) }
            used += f.count
            buffer[used] = 10
            used += 1
            return
        }
        if fields.count == 1 && fields[0].count == 0 {
            try reserve(3)
            buffer[used] = 34; buffer[used + 1] = 34; buffer[used + 2] = 10
            used += 3
            return
        }
        for i in 0..<fields.count {
            let f = fields[i]
            let n = f.count
            try reserve(2 * n + 3)
            var out = buffer + used
            if i > 0 {
                out.pointee = delimiter
                out += 1
            }
            if n > 0 {
                let src = f.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var j = 0
                while j < n && special[Int(src[j])] == 0 { j += 1 }
                if j == n {
                    out.update(from: src, count: n)
                    out += n
                } else {
                    out.pointee = 34
                    out += 1
                    for k in 0..<n {
                        let c = src[k]
                        out.pointee = c
                        out += 1
                        if c == 34 {
                            out.pointee = 34
                            out += 1
                        }
                    }
                    out.pointee = 34
                    out += 1
                }
            }
            used = out - buffer
        }
        try reserve(1)
        buffer[used] = 10
        used += 1
    }

}
