/// Splits a job's input into ranges when the job starts, from the files alone and without
/// regard to how many run at once (`--jobs` may change on resume): every file is at least one
/// range; a plain file is cut every `rangeSize` bytes; a BGZF file (gzip members that say
/// their size in a `BC` extra field, as bgzip writes) between members, about every
/// `rangeSize` uncompressed bytes. Any other gzip file is one range: its members' starts
/// cannot be found without decompressing it.
struct RangePlanner {
    let rangeSize: Int64

    /// The ranges of the files at `paths` (the first one open already), in input order, and a
    /// notice for each file that stays whole. The files are opened one at a time.
    func plan(first: InputFile, paths: [String]) throws -> (ranges: [InputRange], notices: [String]) {
        var ranges: [InputRange] = []
        var notices: [String] = []
        for (index, path) in paths.enumerated() {
            let file = index == 0 ? first : try InputFile(path: path)
            let magic = try file.read(at: 0, count: 2)
            if GzipByteSource.isGzip(magic) {
                if let blocks = try bgzfBlocks(file) {
                    ranges += group(blocks, file: index)
                } else {
                    ranges.append(InputRange(file: index, start: 0, end: nil))
                    if file.size > rangeSize {
                        notices.append("\(file.path) is one gzip member: it is one range, read on one core (BGZF, as bgzip writes, or many members split it)")
                    }
                }
                continue
            }
            let size = file.size
            var start: Int64 = 0
            while true {
                let next = start + rangeSize
                if next >= size {
                    ranges.append(InputRange(file: index, start: start, end: nil))
                    break
                }
                ranges.append(InputRange(file: index, start: start, end: next))
                start = next
            }
        }
        return (ranges, notices)
    }

    /// A BGZF block: where it starts in the file and in the uncompressed stream.
    struct Block {
        var compressed: Int64
        var uncompressed: Int64
    }

    /// Ranges of whole blocks, each starting at a block, about `rangeSize` uncompressed bytes.
    private func group(_ blocks: [Block], file: Int) -> [InputRange] {
        var ranges: [InputRange] = []
        var startIndex = 0
        for (i, block) in blocks.enumerated() where i > 0 {
            if block.uncompressed - blocks[startIndex].uncompressed >= rangeSize {
                ranges.append(range(blocks, startIndex, end: block.uncompressed, file: file))
                startIndex = i
            }
        }
        ranges.append(range(blocks, startIndex, end: nil, file: file))
        return ranges
    }

    private func range(_ blocks: [Block], _ i: Int, end: Int64?, file: Int) -> InputRange {
        let b = blocks[i]
        return InputRange(file: file, start: b.uncompressed, end: end,
                          block: i == 0 ? nil : InputRange.BlockStart(compressedOffset: b.compressed, member: i + 1))
    }

    /// Every block of a BGZF file, walked from its first header to its end by the sizes the
    /// headers give (each trailer's length adds up the uncompressed offsets); nil when a member
    /// does not say its size, or the sizes do not end exactly at the end of the file.
    func bgzfBlocks(_ file: InputFile) throws -> [Block]? {
        let size = file.size
        var blocks: [Block] = []
        var compressed: Int64 = 0
        var uncompressed: Int64 = 0
        // Headers are read in chunks, so that a file of many blocks takes few reads.
        var chunk: [UInt8] = []
        var chunkStart: Int64 = 0
        func bytes(_ offset: Int64, _ count: Int) throws -> ArraySlice<UInt8>? {
            if offset < chunkStart || offset + Int64(count) > chunkStart + Int64(chunk.count) {
                chunkStart = offset
                chunk = try file.read(at: offset, count: max(count, 1 << 20))
            }
            let from = Int(offset - chunkStart)
            guard from + count <= chunk.count else { return nil }
            return chunk[from..<(from + count)]
        }
        while compressed < size {
            guard let header = try bytes(compressed, 12) else { return nil }
            let h = Array(header)
            // Magic, deflate, FEXTRA set.
            guard h[0] == 0x1F, h[1] == 0x8B, h[2] == 8, h[3] & 4 != 0 else { return nil }
            let extraLength = Int(h[10]) | Int(h[11]) << 8
            guard let extra = try bytes(compressed + 12, extraLength) else { return nil }
            let x = Array(extra)
            var blockSize: Int64? = nil
            var i = 0
            while i + 4 <= x.count {
                let length = Int(x[i + 2]) | Int(x[i + 3]) << 8
                if x[i] == 66, x[i + 1] == 67, length == 2, i + 6 <= x.count {
                    blockSize = Int64(Int(x[i + 4]) | Int(x[i + 5]) << 8) + 1
                }
                i += 4 + length
            }
            guard let blockSize, blockSize >= 12 + Int64(extraLength) + 8, compressed + blockSize <= size,
                  let trailer = try bytes(compressed + blockSize - 4, 4) else { return nil }
            let t = Array(trailer)
            let length = Int64(t[0]) | Int64(t[1]) << 8 | Int64(t[2]) << 16 | Int64(t[3]) << 24
            blocks.append(Block(compressed: compressed, uncompressed: uncompressed))
            compressed += blockSize
            uncompressed += length
        }
        return blocks.isEmpty ? nil : blocks
    }
}
