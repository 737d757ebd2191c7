/// A POSIX extended regular expression, or plain bytes when the text has no regular-expression
/// syntax (found with `memchr` and `memcmp`, several times faster than `regexec`).
final class Pattern {
    let text: String
    private let literal: [UInt8]?
    private var regex: UnsafeMutablePointer<regex_t>?
    private var scratch: UnsafeMutablePointer<CChar>
    private var scratchCapacity = 256

    /// Compiles `text`; `transform` names the caller in errors.
    init(_ text: String, for transform: String, captures: Bool = false) throws {
        self.text = text
        let meta = Set(".[]()*+?{}|^$\\\\".utf8)
        if !captures && !text.isEmpty && !text.utf8.contains(where: meta.contains) {
            literal = Array(text.utf8)
        } else {
            literal = nil
            let re = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
            let rc = regcomp(re, text, REG_EXTENDED | (captures ? 0 : REG_NOSUB))
            if rc != 0 {
                var message = [CChar](repeating: 0, count: 256)
                regerror(rc, re, &message, message.count)
                re.deallocate()
                let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw PipeRunError(.usage, "\(transform): bad regular expression '\(text)': \(reason)")
            }
            regex = re
        }
        scratch = .allocate(capacity: scratchCapacity)
    }

    deinit {
        if let regex {
            regfree(regex)
            regex.deallocate()
        }
        scratch.deallocate()
    }

    /// Whether the pattern occurs anywhere in `bytes`.
    func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if let literal {
            return literal.withUnsafeBytes { Self.find($0, in: bytes, from: 0) != nil }
        }
        terminate(bytes)
        return regexec(regex!, scratch, 0, nil, 0) == 0
    }

    /// Calls `body` with each match in `bytes`, left to right: its start and end offsets and its
    /// groups ((-1, -1) for a group that did not take part). `body` returns where to look for
    /// the next match. The bytes are copied for `regexec` once, not once per match.
    func forEachMatch(in bytes: UnsafeRawBufferPointer, _ body: (Int, Int, [(Int, Int)]) -> Int) {
        var from = 0
        if let literal {
            while from <= bytes.count,
                  let at = literal.withUnsafeBytes({ Self.find($0, in: bytes, from: from) }) {
                from = body(at, at + literal.count, [(at, at + literal.count)])
            }
            return
        }
        terminate(bytes)
        var matches = [regmatch_t](repeating: regmatch_t(), count: 10)
        while from <= bytes.count {
            let flags: Int32 = from > 0 ? REG_NOTBOL : 0
            guard regexec(regex!, scratch + from, 10, &matches, flags) == 0 else { return }
            let groups = matches.map { $0.rm_so < 0 ? (-1, -1) : (from + Int($0.rm_so), from + Int($0.rm_eo)) }
            from = body(groups[0].0, groups[0].1, groups)
        }
    }

    /// Copies `bytes` into the scratch buffer with a NUL after them, for `regexec`.
    private func terminate(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count + 1 > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = (bytes.count + 1) * 2
            scratch = .allocate(capacity: scratchCapacity)
        }
        if bytes.count > 0 {
            UnsafeMutableRawPointer(scratch).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        scratch[bytes.count] = 0
    }

    /// Where `needle` first occurs in `haystack` at or after `from`.
    static func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard needle.count > 0, haystack.count - from >= needle.count else { return nil }
        let base = haystack.baseAddress!
        let first = Int32(needle[0])
        var p = base + from
        let last = base + (haystack.count - needle.count)
        while p <= last, let hit = memchr(p, first, last - p + 1) {
            if memcmp(hit, needle.baseAddress!, needle.count) == 0 { return UnsafeRawPointer(hit) - base }
            p = UnsafeRawPointer(hit) + 1
        }
        return nil
    }
}
