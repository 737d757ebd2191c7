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
    /// The value's bytes, where a field can be compared with them without a closure.
    private let valueBytes: UnsafeMutableRawBufferPointer
    private let number: Double
    private let pattern: Pattern?
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
        var pattern: Pattern? = nil
        switch op {
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let n = Double(value), n.isFinite else {
                throw PipeRunError(.usage, "filter: '\(value)' is not a number, which \(op.rawValue) needs")
            }
            number = n
        case .matches, .notMatches:
            pattern = try Pattern(value, for: "filter")
        case .equal, .notEqual:
            break
        }
        self.column = column
        self.op = op
        self.value = value
        self.number = number
        self.pattern = pattern
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(value.utf8.count, 1), alignment: 1)
        bytes.copyBytes(from: value.utf8)
        valueBytes = UnsafeMutableRawBufferPointer(rebasing: bytes[..<value.utf8.count])
    }

    deinit {
        valueBytes.deallocate()
    }

    /// Whether a row is kept depends on its own field alone.
    public var rangeSupport: RangeSupport { .rowLocal }

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
        case .equal: return field.equals(UnsafeRawBufferPointer(valueBytes))
        case .notEqual: return !field.equals(UnsafeRawBufferPointer(valueBytes))
        case .matches: return matches(field)
        case .notMatches: return !matches(field)
        case .less: return field.double.map { $0 < number } ?? false
        case .lessOrEqual: return field.double.map { $0 <= number } ?? false
        case .greater: return field.double.map { $0 > number } ?? false
        case .greaterOrEqual: return field.double.map { $0 >= number } ?? false
        }
    }

    private func matches(_ field: Field) -> Bool {
        pattern!.matches(field.bytes)
    }
}
