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
///
/// A job may process ranges of its input side by side (`--jobs`), each range through its own
/// instances made from the same specs, started with the same columns and fresh; the driver
/// joins the ranges in input order. Declare ``rangeSupport`` to allow it: ``RangeSupport/rowLocal``
/// for a transform whose rows depend on themselves alone, ``RangeSupport/combinable`` with
/// ``combine(earlier:later:)`` for one that keeps state. Without a declaration the job runs one
/// range at a time.
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

    /// Whether ranges of the input may run side by side through their own instances of this
    /// transform (`--jobs`); ``RangeSupport/none`` unless the transform declares more.
    var rangeSupport: RangeSupport { get }

    /// Works out, for a ``RangeSupport/combinable`` transform, what a range run by an instance
    /// that started fresh means for a run in input order.
    ///
    /// The driver asks stage by stage, in chain order, and asks a stage only when every stage
    /// before it combined, so the rows this transform received in the range are exactly those a
    /// run in input order gives it. A range never calls ``finish(emit:)``: the job's one finish
    /// runs on a chain restored with the combined states.
    ///
    /// Called on an instance started with the input columns (the range's own, say). Work on the
    /// bytes given and leave the instance's own state as it is.
    ///
    /// - Parameters:
    ///   - earlier: The saved state (``saveState()`` bytes) of a run in input order at the
    ///     range's start; nil when there is none yet (a fresh transform). Possibly restored from
    ///     the checkpoint of an earlier release, so in any format ``restoreState(_:)`` accepts.
    ///   - later: The saved state of the instance that ran the range from a fresh state; nil
    ///     when it saved none.
    /// - Returns: ``RangeCombination/combined(_:)`` with the state after the range of a run in
    ///   input order, or ``RangeCombination/runAgain`` (the default) when what the range emitted
    ///   is not what that run emits.
    /// - Throws: A ``PipeRunError`` when a state does not fit this transform.
    func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination
}

/// How a transform can run when a job processes ranges of its input side by side (`--jobs`).
public enum RangeSupport: Sendable, Equatable {
    /// Nothing declared (the default): the job runs one range at a time, in input order.
    case none
    /// What a row makes depends on that row alone (its fields, line and offset), never on other
    /// rows: ranges run side by side and their outputs are joined in input order.
    ///
    /// Such a transform keeps no state across rows (``RowTransform/saveState()`` gives nil), so
    /// there is nothing to combine.
    case rowLocal
    /// Keeps state across rows; ``RowTransform/combine(earlier:later:)`` works out a range's
    /// result in input order from the state before it and what the range did alone.
    case combinable
}

/// What ``RowTransform/combine(earlier:later:)`` makes of a range run from a fresh state.
public enum RangeCombination: Equatable, Sendable {
    /// What the range emitted from a fresh state is exactly what a run in input order emits
    /// from `earlier`; the associated value is the state after the range in that run, as
    /// ``RowTransform/saveState()`` would give it (nil: no state).
    case combined([UInt8]?)
    /// It is not: the driver runs the range again with `earlier` restored.
    case runAgain
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
    public var rangeSupport: RangeSupport { .none }
    public func combine(earlier: [UInt8]?, later: [UInt8]?) throws -> RangeCombination { .runAgain }
}

/// A transform whose state is one `Codable` value, saved as JSON in every checkpoint.
public protocol StatefulRowTransform: RowTransform {
    associatedtype State: Codable
    /// The state to carry across rows, checkpoints and resumes.
    var state: State { get set }
}

extension StatefulRowTransform {
    public func saveState() throws -> [UInt8]? {
        try Self.savedState(of: state)
    }

    public func restoreState(_ bytes: [UInt8]) throws {
        state = try Self.restoredState(from: bytes)
    }

    /// The bytes ``saveState()`` gives for `state`: JSON with sorted keys. For
    /// ``RowTransform/combine(earlier:later:)``, which answers with a state without setting one.
    public static func savedState(of state: State) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(state))
    }

    /// The state that ``restoreState(_:)`` takes from `bytes`, without setting it.
    public static func restoredState(from bytes: [UInt8]) throws -> State {
        try JSONDecoder().decode(State.self, from: Data(bytes))
    }
}
