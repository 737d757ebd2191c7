/// Copying a range's segment files to the job's output and quarantine file (see
/// ``RangedJobRunner``).
enum SegmentCopy {
    /// Copies the first `count` bytes of the file at `path` to `file` at `offset`; returns the
    /// new length of `file`.
    static func copy(from path: String, count: Int64, to file: OutputFile, at offset: Int64) throws -> Int64 {
        let source = try InputFile(path: path)
        try file.truncate(to: offset)
        var done: Int64 = 0
        while done < count {
            let chunk = try source.read(at: done, count: Int(min(count - done, 4 << 20)))
            guard !chunk.isEmpty else {
                throw PipeRunError(.ioError, "segment \(path) is shorter than its checkpoint says (\(done) of \(count) bytes)")
            }
            try chunk.withUnsafeBytes { try file.write($0) }
            done += Int64(chunk.count)
        }
        try file.drain()
        try file.truncate(to: offset + count)
        return offset + count
    }

    /// Copies quarantine lines (`line,offset,reason,record`) with `lineShift` added to each line.
    static func copyQuarantine(from path: String, count: Int64, to file: OutputFile, at offset: Int64,
                                lineShift: Int64) throws -> Int64 {
        let source = try InputFile(path: path)
        let reader = RecordReader(source: FileByteSource(source, shouldStop: { false }), format: .csv, delimiter: 44,
                                  maxRecordBytes: 1 << 30)
        reader.flexible = true
        try file.truncate(to: offset)
        var length = offset
        loop: while reader.cursor < count {
            let raw: UnsafeRawBufferPointer
            switch try reader.next() {
            case .record: raw = reader.rawRecord
            case .malformed(let bad):
                throw PipeRunError(.ioError, "quarantine segment \(path) is damaged at byte \(bad.offset)")
            case .end: break loop
            }
            guard let comma = raw.firstIndex(of: 44), let line = Int64(String(decoding: raw[..<comma], as: UTF8.self)) else {
                throw PipeRunError(.ioError, "quarantine segment \(path) is damaged at byte \(reader.recordOffset)")
            }
            let head = Array(String(line + lineShift).utf8)
            try head.withUnsafeBytes { try file.write($0) }
            try file.write(UnsafeRawBufferPointer(rebasing: raw[comma...]))
            length += Int64(head.count + raw.count - comma)
        }
        try file.drain()
        try file.truncate(to: length)
        return length
    }
}
