import PipeRun

/// A stateless transform: `mask-email:COL` keeps the first letter of an address's local part
/// and its domain, `ann.lee@example.com` → `a***@example.com`.
public final class MaskEmail: RowTransform {
    public static let descriptor = TransformDescriptor(
        name: "mask-email", usage: "mask-email:COL", summary: "hide e-mail addresses but their domain"
    ) { argument in MaskEmail(column: argument) }

    let column: String
    var index = 0
    var fields: [Field] = []
    var masked: [UInt8] = []

    public init(column: String) {
        self.column = column
    }

    /// Each row's output depends on that row alone: ranges of a job may run through it side
    /// by side (`--jobs`). (`RunningTotal` declares nothing: its job runs in one piece.)
    public var rangeSupport: RangeSupport { .rowLocal }

    public func start(input: Columns) throws -> Columns {
        index = try input.require(column, for: "mask-email")
        return input
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        let email = row[index].bytes
        guard let at = email.firstIndex(of: UInt8(ascii: "@")), at > 0 else {
            return try emit(row)  // not an address: leave it alone
        }
        masked.removeAll(keepingCapacity: true)
        masked.append(email[0])
        masked.append(contentsOf: "***".utf8)
        masked.append(contentsOf: email[at...])
        fields.removeAll(keepingCapacity: true)
        for i in 0..<row.count { fields.append(row[i]) }
        try masked.withUnsafeBytes { bytes in
            fields[index] = Field(bytes)
            try fields.withUnsafeBufferPointer { try emit(Row(fields: $0, line: row.line, offset: row.offset)) }
        }
    }
}
