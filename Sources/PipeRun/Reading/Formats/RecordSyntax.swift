/// The syntax of one input format: how ``RecordReader`` splits its buffered bytes into records
/// and fields, and which parsed records it passes over or rejects.
///
/// Every requirement is static, and the reader's record loop is generic over the format:
/// ``RecordReader/next()`` picks the loop specialised on the reader's format with one switch,
/// so that parsing and checking a record are direct calls (inlined, but for the CSV parse),
/// never calls through a witness table. The buffer, its refills, the blocks lent by a read-ahead source, the
/// records parsed ahead and the recovery from malformed records are the reader's, shared.
///
/// A new format is a type in a file of its own that conforms, a case of ``RecordFormat``, and
/// that case's line in ``RecordFormat/syntax`` and in ``RecordReader/next()``.
protocol RecordSyntax {
    /// Whether ``parseRecord(at:in:into:)`` reads ``RecordInput/specials``, the positions of
    /// the delimiters, quotes, CRs and LFs that the vectorised block scanner lists. (A reader
    /// whose format lists none reads into its own buffer: a lent block comes with its list.)
    static var usesSpecialBytes: Bool { get }

    /// Whether the records of a read-ahead block may be parsed on the read-ahead thread by a
    /// ``BlockParser`` (RFC 4180 records, in C), for the reader to take as they are.
    static var isParsedAhead: Bool { get }

    /// Whether a CR that no LF follows ends a line: the reader goes on after the line end that
    /// follows a malformed record.
    static var loneCREndsLine: Bool { get }

    /// Parses the record that starts at `start`, appending its fields to `fields` (empty).
    ///
    /// Called again from the same `start`, with more bytes, after `.needMore`. Nothing is
    /// allocated: a field is a view of `input.bytes`, or of `input.scratch` when its bytes
    /// differ from the input's.
    static func parseRecord(at start: Int, in input: inout RecordInput, into fields: inout FieldList) -> ParseOutcome

    /// Checks a record just parsed (`record` holds its bytes, its line end included), given
    /// the field count the job requires, if any.
    static func check(_ record: UnsafeRawBufferPointer, fieldCount: Int, expectedFields: Int?) -> RecordCheck
}

/// The bytes a format parses a record from: the reader's buffer, with the positions of its
/// special bytes, and room to unescape fields. (The reader keeps its buffer's state in one,
/// and lends it to the parser as it is: a parse starts with nothing to copy.)
struct RecordInput {
    /// The buffered bytes, `bytes[0..<end]`.
    var bytes: UnsafeMutablePointer<UInt8>
    var end: Int
    /// Whether the input ends at ``end``. If not, a record that reaches it may go on: the
    /// parser answers `.needMore`.
    var isAtEnd: Bool
    /// The byte between fields.
    let delimiter: UInt8
    /// The positions in ``bytes`` of every delimiter, quote, CR and LF, ascending, then ``end``
    /// (for a format that ``RecordSyntax/usesSpecialBytes``; else only ``end``).
    var specials: UnsafeMutablePointer<UInt32>
    /// The first entry of ``specials`` at or after the record's start. The parser leaves it
    /// after the record's last (the reader goes back after a malformed record); it changes
    /// nothing else.
    var nextSpecial: Int
    /// Room as large as the buffer, for fields whose bytes are not the input's.
    var scratch: UnsafeMutablePointer<UInt8>
}

/// Where a format's parse of one record got to.
enum ParseOutcome {
    /// A whole record: it ends at `end` (just after its line end, if any) and holds `newlines`
    /// line feeds. It is `verbatim` when writing its fields back gives exactly its bytes (see
    /// ``Row``).
    case record(end: Int, newlines: Int64, verbatim: Bool)
    /// The record may go on after the buffered bytes. `insideQuotes`: only a quote can end it
    /// (not a line end), so that a refill waiting for its end waits for a quote.
    case needMore(insideQuotes: Bool)
    /// The record is malformed at `at`; the reader goes on after the next line end.
    case malformed(StaticString, at: Int)
}

/// What a format makes of a record it parsed.
enum RecordCheck {
    /// The record is good.
    case accept
    /// The bytes are no record (a blank line in CSV) and are passed over.
    case skip
    /// The record is malformed, for this reason.
    case reject(String)
}
