/// Keeps the rows whose column satisfies a condition: `filter:status=refunded`,
/// `filter:status!=paid`, `filter:email~@example\.com$`, `filter:amount>=100`.
///
/// `=` and `!=` compare bytes exactly. `~` and `!~` match a POSIX extended regular expression
/// anywhere in the field. `<`, `<=`, `>`, `>=` compare numerically; a field that is not a number
/// never matches them.
public final class FilterTransform: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "filter", usage: "filter:COL=VALUE",
        summary: "keep rows where COL = != ~ !~ < <= > >= VALUE"
    ) { argument in try FilterTransform(argument) }

    public enum Operator: String, Sendable, CaseIterable {
        case equal = "=", notEqual = "!=", matches = "~", notMatches = "!~"
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    public let column: String
    public let op: Operator
    public let value: String
    private let valueBytes: [UInt8]
    private let number: Double
    private var regex: UnsafeMutablePointer<regex_t>?
    /// A pattern without regular-expression syntax is searched for as plain bytes (`memmem`),
    /// several times faster than `regexec`.
    private let literal: [UInt8]?
    private var scratch: UnsafeMutablePointer<CChar>
    private var scratchCapacity = 256
    private var index = 0

    /// Parses `COL<op>VALUE`.
    public convenience init(_ argument: String) throws {
        let bytes = Array(argument.utf8)
        guard let at = bytes.firstIndex(where: { "=!~<>".utf8.contains($0) }), at > 0 else {
            throw PipeRunError(.usage, "filter: expected COL=VALUE (or !=, ~, !~, <, <=, >, >=), got '\(argument)'")
        }
        var opEnd = at + 1
        if opEnd < bytes.count, bytes[opEnd] == UInt8(ascii: "=") || bytes[opEnd] == UInt8(ascii: "~"),
           Operator(rawValue: String(decoding: bytes[at...opEnd], as: UTF8.self)) != nil {
            opEnd += 1
        }
        guard let op = Operator(rawValue: String(decoding: bytes[at..<opEnd], as: UTF8.self)) else {
            throw PipeRunError(.usage, "filter: unknown operator in '\(argument)'")
        }
        try self.init(column: String(decoding: bytes[..<at], as: UTF8.self), op,
                      String(decoding: bytes[opEnd...], as: UTF8.self))
    }

    public init(column: String, _ op: Operator, _ value: String) throws {
        var number = 0.0
        var regex: UnsafeMutablePointer<regex_t>? = nil
        switch op {
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let n = Double(value) else {
                throw PipeRunError(.usage, "filter: '\(value)' is not a number, which \(op.rawValue) needs")
            }
            number = n
        case .matches, .notMatches:
            let re = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
            let rc = regcomp(re, value, REG_EXTENDED | REG_NOSUB)
            if rc != 0 {
                var message = [CChar](repeating: 0, count: 256)
                regerror(rc, re, &message, message.count)
                re.deallocate()
                let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw PipeRunError(.usage, "filter: bad regular expression '\(value)': \(text)")
            }
            regex = re
        case .equal, .notEqual:
            break
        }
        self.column = column
        self.op = op
        self.value = value
        self.number = number
        self.regex = regex
        let meta = Set(".[]()*+?{}|^$\\".utf8)
        literal = (op == .matches || op == .notMatches) && !value.utf8.contains(where: meta.contains) && !value.isEmpty
            ? Array(value.utf8) : nil
        valueBytes = Array(value.utf8)
        scratch = .allocate(capacity: scratchCapacity)
    }

    deinit {
        if let regex {
            regfree(regex)
            regex.deallocate()
        }
        scratch.deallocate()
    }

    public func start(input: Columns) throws -> Columns {
        index = try input.require(column, for: "filter")
        return input
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        if keeps(row[index]) { try emit(row) }
    }

    @inline(__always)
    func keeps(_ field: Field) -> Bool {
        switch op {
        case .equal: return field.equals(valueBytes)
        case .notEqual: return !field.equals(valueBytes)
        case .matches: return matches(field)
        case .notMatches: return !matches(field)
        case .less: return field.double.map { $0 < number } ?? false
        case .lessOrEqual: return field.double.map { $0 <= number } ?? false
        case .greater: return field.double.map { $0 > number } ?? false
        case .greaterOrEqual: return field.double.map { $0 >= number } ?? false
        }
    }

    /// Whether `needle` occurs in `haystack`: `memchr` to each candidate first byte, then `memcmp`.
    private func contains(_ haystack: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
        let first = Int32(needle[0])
        var p = haystack.baseAddress!
        let last = haystack.baseAddress! + (haystack.count - needle.count)
        while p <= last, let hit = memchr(p, first, last - p + 1) {
            if memcmp(hit, needle.baseAddress!, needle.count) == 0 { return true }
            p = UnsafeRawPointer(hit) + 1
        }
        return false
    }

    private func matches(_ field: Field) -> Bool {
        if let literal {
            guard field.count >= literal.count else { return false }
            return literal.withUnsafeBytes { contains(field.bytes, $0) }
        }
        if field.count + 1 > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = (field.count + 1) * 2
            scratch = .allocate(capacity: scratchCapacity)
        }
        if field.count > 0 {
            UnsafeMutableRawPointer(scratch).copyMemory(from: field.bytes.baseAddress!, byteCount: field.count)
        }
        scratch[field.count] = 0
        return regexec(regex!, scratch, 0, nil, 0) == 0
    }
}
