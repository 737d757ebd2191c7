import CScan
import CZlib
import Testing
@testable import PipeRun

/// The vectorised pieces against plain reference code: the special-byte scan, the folding
/// CRC-32 (against zlib's), and the byte-key table (against a dictionary).
@Suite struct ScanAndChecksumTests {
    /// Random bytes where about one byte in `oneIn` is a delimiter, quote, CR or LF.
    func randomBytes(_ count: Int, oneIn: UInt64, _ rng: inout SplitMix) -> [UInt8] {
        let specials: [UInt8] = [44, 34, 13, 10]
        return (0..<count).map { _ in
            let r = rng.next()
            return r % oneIn == 0 ? specials[Int((r >> 8) % 4)] : UInt8(truncatingIfNeeded: (r >> 16) % 200 + 32)
        }
    }

    @Test func specialScanListsEveryPositionInOrder() {
        var rng = SplitMix(seed: 41)
        for round in 0..<400 {
            let count = round < 200 ? round : Int(rng.next() % 5000)
            let bytes = randomBytes(count + 7, oneIn: [2, 5, 13, 64][round % 4], &rng)
            let start = Int(rng.next() % 7)
            let base = UInt32(rng.next() % 1000)
            let expected = (0..<count).filter { [44, 34, 13, 10].contains(bytes[start + $0]) }.map { base + UInt32($0) }
            // The scan this CPU uses, and each simpler one.
            for level in 0...cscan_scan_level() {
                var out = [UInt32](repeating: 0, count: count + 64)
                let n = bytes.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer {
                        cscan_index_specials_at(level, b.baseAddress! + start, count, 44, base, $0.baseAddress!)
                    }
                }
                #expect(Array(out.prefix(n)) == expected, "level \(level), round \(round), \(count) bytes")
            }
        }
    }

    @Test(.enabled(if: CRC32.isFolding, "needs a CPU with PCLMULQDQ"))
    func foldingCRCMatchesZlib() {
        var rng = SplitMix(seed: 42)
        for round in 0..<300 {
            let count = round < 150 ? round * 3 : Int(rng.next() % 200_000)
            let bytes = randomBytes(count + 15, oneIn: 7, &rng)
            let start = Int(rng.next() % 15)
            let seed = round % 3 == 0 ? 0 : UInt32(truncatingIfNeeded: rng.next())
            bytes.withUnsafeBytes { all in
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                let zlib = UInt32(crc32(uLong(seed), slice.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(count)))
                #expect(CRC32.update(seed, slice) == zlib, "round \(round), \(count) bytes")
                // In two pieces, as blocks arrive.
                let cut = count == 0 ? 0 : Int(rng.next() % UInt64(count))
                let first = CRC32.update(seed, UnsafeRawBufferPointer(rebasing: slice[..<cut]))
                #expect(CRC32.update(first, UnsafeRawBufferPointer(rebasing: slice[cut...])) == zlib)
            }
        }
        // The check value of the CRC-32 used by gzip.
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32.update(0, $0) } == 0xCBF4_3926)
        let long = [UInt8](repeating: 0x61, count: 1000)
        #expect(long.withUnsafeBytes { CRC32.update(0, $0) } == long.withUnsafeBytes { CRC32.update(0, $0, folding: false) })
    }

    @Test func byteKeyTableNumbersKeysInOrderOfFirstAppearance() {
        var rng = SplitMix(seed: 43)
        var table = ByteKeyTable()
        var reference: [[UInt8]: Int] = [:]
        for _ in 0..<50_000 {
            let length = Int(rng.next() % 20)
            let key = (0..<length).map { _ in UInt8(rng.next() % 4) }
            let (number, isNew) = table.number(of: key)
            if let known = reference[key] {
                #expect(!isNew && number == known)
            } else {
                #expect(isNew && number == reference.count)
                reference[key] = number
            }
        }
        #expect(table.count == reference.count)
        for (key, number) in reference { #expect(Array(table.key(number)) == key) }
    }
}
