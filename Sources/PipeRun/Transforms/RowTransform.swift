#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A per-row step of a job: it receives each row and emits zero or more rows.
///
/// The driver calls ``start(input:)`` once with the columns it will receive, then
/// ``process(_:emit:)`` for every row in input order, and ``finish(emit:)`` once at the end of
/// the input. Rows are views into the driver's buffers, valid only during the call.
///
/// A transform that keeps state across rows (counts, totals, "seen" sets) must save it in
/// ``saveState()`` and take it back in ``restoreState(_:)``: the driver stores those bytes in
/// every checkpoint, so that a resumed job continues with exactly the state an uninterrupted
/// run would have had at that row. Adopt ``StatefulRowTransform`` to get both from a `Codable`
/// value. Stateless transforms need neither.
public protocol RowTransform: AnyObject {
    /// Learns the input columns and returns the columns of the rows this transform emits.
    /// Throw a ``PipeRunError`` with code ``PipeRunError/Code/usage`` for a column that does not exist.
    func start(input: Columns) throws -> Columns

    /// Handles one row; call `emit` for each row to pass on (zero, one or several times).
    func process(_ row: Row, emit: (Row) throws -> Void) throws

    /// Called once after the last row: emit aggregates here.
    func finish(emit: (Row) throws -> Void) throws

    /// The transform's state as bytes, or nil when it has none. Called at every checkpoint.
    func saveState() throws -> [UInt8]?

    /// Restores state saved by ``saveState()``; called before any row when a job resumes.
    func restoreState(_ state: [UInt8]) throws

    /// Called just before every checkpoint is written, in chain order: emit any rows held back
    /// (a batch waiting for an answer) and flush or commit side effects here, so that they line
    /// up with the checkpoint. Everything emitted here is in the checkpoint's output.
    func willCheckpoint(emit: (Row) throws -> Void) throws

    /// How the transform runs when ranges of the input run side by side.
    var rangeSupport: RangeSupport { get }

    /// The state after a range in a run in input order, from `earlier` and the range's own.
    func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination
}

/// Thrown by a transform to end the job as if the input had ended after the current row (as
/// `head:N` does): every transform's ``RowTransform/finish(emit:)`` runs and the job completes.
public struct EndOfJob: Error, Sendable {
    public init() {}
}

/// Thrown by a transform that cannot go on at all (a helper process died, say). Unlike other
/// errors it ignores `--on-error`: the job stops with status 65 without writing a new
/// checkpoint, so the last checkpoint (which only covers finished rows) stays the resume point.
public struct FatalTransformError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension RowTransform {
    public func finish(emit: (Row) throws -> Void) throws {}
    public func saveState() throws -> [UInt8]? { nil }
    public func restoreState(_ state: [UInt8]) throws {}
    public func willCheckpoint(emit: (Row) throws -> Void) throws {}
}

/// A transform whose state is one `Codable` value, saved as JSON in every checkpoint.
public protocol StatefulRowTransform: RowTransform {
    associatedtype State: Codable
    /// The state to carry across rows, checkpoints and resumes.
    var state: State { get set }
}

extension StatefulRowTransform {
    public func saveState() throws -> [UInt8]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(state))
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        state = try JSONDecoder().decode(State.self, from: Data(bytes))
    }
}

/// How a transform can run when a job processes ranges of its input side by side (`--jobs`).
public enum RangeSupport: Sendable, Equatable {
    /// Nothing declared (the default): the job runs one range at a time, in input order.
    case none
    /// What a row makes depends on that row alone: ranges run side by side.
    case rowLocal
    /// Keeps state across rows, and ``RowTransform/combine(earlier:later:)`` joins ranges.
    case combinable
}

/// What ``RowTransform/combine(earlier:later:)`` makes of a range run from a fresh state.
public enum RangeCombination: Equatable, Sendable {
    case combined([UInt8]?)
    case runAgain
}

extension RowTransform {
    public var rangeSupport: RangeSupport { .none }
    public func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination { .runAgain }
}
