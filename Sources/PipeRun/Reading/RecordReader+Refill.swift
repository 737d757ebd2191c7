import CScan

/// Filling the reader's buffer: the block machinery every format shares.
extension RecordReader {
    /// Moves the unread bytes to the front and reads more; grows the buffer when a record fills
    /// it. Returns false when the buffer is full and may not grow. With a read-ahead source that
    /// lends whole blocks, the unread bytes go in front of the next block instead, and the
    /// block is the buffer: nothing is copied but a partial record. `insideQuotes`: the parse
    /// asked for more inside a quoted field, so that only a quote can end the record.
    @discardableResult
    func refill(insideQuotes: Bool = false) throws -> Bool {
        refills += 1
        // Keep the positions of the unread bytes' special bytes (the parser starts again at `pos`).
        var kept = 0
        var upper = specialCount
        while kept < upper {
            let middle = (kept + upper) / 2
            if Int(specials[middle]) < pos { kept = middle + 1 } else { upper = middle }
        }
        if let lender, !eof, end - pos <= lender.headroom, lender.canLendBlock {
            try takeLentBlock(from: lender, keepingSpecialsFrom: kept)
            return true
        }
        parsedAt = -1
        moveUnreadToOwnBuffer(keepingSpecialsFrom: kept)
        if end == capacity {
            guard capacity < maxRecordBytes else { return false }
            growBuffer()
        }
        // What could end a long partial record (see ``readMore(ending:)``).
        try readMore(ending: insideQuotes ? 34 : 10)
        return true
    }

    /// Makes the lender's next block the buffer, with the unread bytes (and their entries from
    /// `kept` on in the list of special bytes) in the room in front of it; at the input's end,
    /// leaves the buffer as it is.
    private func takeLentBlock(from lender: ReadAheadSource, keepingSpecialsFrom kept: Int) throws {
        guard let block = try lender.takeBlock() else {
            nextSpecial = kept
            eof = true
            return
        }
        let unread = end - pos
        specialCount -= kept
        let newPos = lender.headroom - unread
        if unread > 0 { (block.start + newPos).update(from: buf + pos, count: unread) }
        let moved = block.specials - specialCount
        let shift = UInt32(truncatingIfNeeded: newPos - pos)
        for i in 0..<specialCount { moved[i] = specials[kept + i] &+ shift }
        if let previous = lent { lender.giveBack(previous) }
        lent = block
        baseOffset += Int64(pos - newPos)
        buf = block.start
        pos = newPos
        end = lender.headroom + block.count
        capacity = end
        specials = moved
        specialCount += block.specialCount
        specials[specialCount] = UInt32(end)
        recordStart = pos
        recordEnd = pos
        nextSpecial = 0
        if let parsed = block.parsed {
            parsedAt = parsed.start
            parsedRecord = parsed.records
            parsedLeft = parsed.count
            parsedFields = parsed.fields
            parsedEndSpecial = specialCount - block.specialCount + parsed.endSpecial
        } else {
            parsedAt = -1
        }
    }

    /// Moves the unread bytes and their entries (from `kept` on) in the list of special bytes
    /// to the front of the reader's own buffer and list; gives back a lent block.
    private func moveUnreadToOwnBuffer(keepingSpecialsFrom kept: Int) {
        let unread = end - pos
        specialCount -= kept
        if lent != nil || pos > 0 {
            // (From a lent block: a partial record longer than the room in front of a block.)
            if unread > 0 { memmove(ownBuf, buf + pos, unread) }
            let shift = UInt32(pos)
            for i in 0..<specialCount { ownSpecials[i] = specials[kept + i] - shift }
            if let previous = lent {
                lender?.giveBack(previous)
                lent = nil
                buf = ownBuf
                capacity = ownCapacity
                specials = ownSpecials
            }
            baseOffset += Int64(pos)
            recordStart = 0
            recordEnd = 0
            pos = 0
            end = unread
        } else if kept > 0 {
            (specials).update(from: specials + kept, count: specialCount)
        }
        nextSpecial = 0
        specials[specialCount] = UInt32(end)
    }

    /// Doubles the reader's own buffer (which is `buf` then, full), up to ``maxRecordBytes``.
    private func growBuffer() {
        let newCapacity = min(capacity * 2, maxRecordBytes)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: buf, count: end)
        ownBuf.deallocate()
        scratch.deallocate()
        ownBuf = grown
        buf = grown
        scratch = .allocate(capacity: newCapacity)
        ownCapacity = newCapacity
        capacity = newCapacity
    }

    /// Reads into the room after ``end`` in the reader's own buffer, listing the special bytes
    /// read; sets ``eof`` at the input's end.
    ///
    /// For a record as long as half the buffer or more, it fills the buffer before parsing
    /// again. (A record's parse starts over at its first byte; so a long record is parsed again
    /// only each time the buffer has doubled, not after every read.) It stops filling when a
    /// byte arrives that could end the record: `ending`, or with an LF a CR too. (A pipe's
    /// writer may be waiting for the rows already read.)
    private func readMore(ending: Int32) throws {
        let fill = (end - pos) * 2 >= capacity
        repeat {
            let space = capacity - end
            if ownSpecialsCapacity - specialCount - 65 < min(space, 1 << 16) {
                growOwnSpecials(atLeast: specialCount + min(space, 1 << 20) + 65)
            }
            // Read no more than the list has room for (a scan may write 64 entries past its count).
            let room = UnsafeMutableRawBufferPointer(start: buf + end,
                                                     count: min(space, ownSpecialsCapacity - specialCount - 65))
            let n: Int
            if let indexing {
                // The source found the special bytes on another thread.
                let got = try indexing.read(into: room, specials: specials + specialCount, base: UInt32(end))
                n = got.bytes
                specialCount += got.specials
            } else {
                n = try source.read(into: room)
                if n > 0 && usesSpecialBytes {
                    specialCount += cscan_index_specials(buf + end, n, delimiter, UInt32(end), specials + specialCount)
                }
            }
            if n == 0 {
                eof = true
                break
            }
            end += n
            specials[specialCount] = UInt32(end)
            if fill && (memchr(buf + end - n, ending, n) != nil || ending == 10 && memchr(buf + end - n, 13, n) != nil) {
                break
            }
        } while fill && end < capacity
    }

    /// Grows the reader's own list of special bytes (which is `specials` then) to at least
    /// `count` entries, doubling.
    private func growOwnSpecials(atLeast count: Int) {
        let newCapacity = max(ownSpecialsCapacity * 2, count)
        let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        grown.update(from: ownSpecials, count: specialCount + 1)
        ownSpecials.deallocate()
        ownSpecials = grown
        specials = grown
        ownSpecialsCapacity = newCapacity
    }
}
