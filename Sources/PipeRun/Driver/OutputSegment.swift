/// Where one range's rows go: the output file through its sink (plain or gzip) and record
/// writer, and the quarantine file for bad records (`--on-error quarantine=PATH`).
final class OutputSegment {
    let file: OutputFile
    let sink: any OutputSink
    let writer: RecordWriter
    let quarantineFile: OutputFile?
    private let quarantineSink: PlainSink?
    let quarantineWriter: RecordWriter?

    /// Writes at `length` of `file` (cut back to it already) and at `quarantineLength` of
    /// `quarantine`, which gets its header line when it is empty (unless `quarantineHeader` is
    /// false: a range's quarantine segment, appended below the file's header).
    init(file: OutputFile, length: Int64, compress: Bool, level: Int, format: RecordFormat, delimiter: UInt8,
         quarantine: OutputFile?, quarantineLength: Int64, quarantineHeader: Bool = true) throws {
        self.file = file
        sink = compress ? try GzipSink(file: file, startingAt: length, level: level)
                        : PlainSink(file: file, startingAt: length)
        writer = RecordWriter(sink: sink, format: format, delimiter: delimiter)
        quarantineFile = quarantine
        if let quarantine {
            try quarantine.truncate(to: quarantineLength)
            let sink = PlainSink(file: quarantine, startingAt: quarantineLength)
            quarantineSink = sink
            quarantineWriter = RecordWriter(sink: sink, format: .csv, delimiter: 44)
            if quarantineLength == 0 && quarantineHeader {
                try quarantineWriter!.writeRaw(UnsafeRawBufferPointer(bytes: "line,offset,reason,record\n"))
            }
        } else {
            quarantineSink = nil
            quarantineWriter = nil
        }
    }

    /// Starts keeping CRC-32s of what is written from here (see ``Checkpoint/completion``).
    func keepChecksums() {
        file.keepChecksum()
        quarantineFile?.keepChecksum()
    }

    /// Makes everything written so far complete in the files (for gzip: finishes the member)
    /// and returns their lengths; a write error shows here at the latest.
    @discardableResult
    func seal() throws -> (output: Int64, quarantine: Int64?) {
        try writer.flush()
        let output = try sink.seal()
        try quarantineWriter?.flush()
        return (output, try quarantineSink?.seal())
    }

    /// Flushes the files' written data to the disk.
    func sync() throws {
        try file.sync()
        try quarantineFile?.sync()
    }

    /// Writes what reached the files before the process ends, ignoring errors (a job that
    /// fails anyway).
    func drain() {
        try? file.drain()
        try? quarantineFile?.drain()
    }

    /// Writes a quarantine line for `bad`: its line, offset, reason and the record without its
    /// line end.
    func quarantine(_ bad: MalformedRecord) throws {
        guard let quarantineWriter else { return }
        let builder = RowBuilder()
        builder.append(String(bad.line))
        builder.append(String(bad.offset))
        builder.append(bad.reason)
        var end = bad.raw.count
        if end > 0 && bad.raw[end - 1] == 10 { end -= 1 }
        if end > 0 && bad.raw[end - 1] == 13 { end -= 1 }
        bad.raw.withUnsafeBytes { builder.appendCopy(UnsafeRawBufferPointer(rebasing: $0[..<end])) }
        try builder.withRow { try quarantineWriter.write($0) }
    }
}

extension UnsafeRawBufferPointer {
    init(bytes text: StaticString) {
        self.init(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }
}
