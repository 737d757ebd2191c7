/// The names of a row's columns, in order.
///
/// Without a header row, columns are named by their 1-based position: `1`, `2`, ...
public struct Columns: Hashable, Sendable, CustomStringConvertible {
    /// The column names, in order.
    public var names: [String]

    public init(_ names: [String]) {
        self.names = names
    }

    /// Columns named `1` to `count`.
    public static func numbered(_ count: Int) -> Columns {
        Columns((0..<count).map { String($0 + 1) })
    }

    /// The number of columns.
    public var count: Int { names.count }

    /// The index of the column called `name`; when no column has that name and `name` is a
    /// whole number, the column at that 1-based position.
    public func index(of name: String) -> Int? {
        if let i = names.firstIndex(of: name) { return i }
        if let n = Int(name), n >= 1, n <= names.count { return n - 1 }
        return nil
    }

    /// The index of the column called `name`, or a usage error that lists the columns.
    public func require(_ name: String, for transform: String) throws -> Int {
        guard let i = index(of: name) else {
            throw PipeRunError(
                .usage,
                "\(transform): no column '\(name)'; the columns are: \(names.joined(separator: ", "))")
        }
        return i
    }

    public var description: String { names.joined(separator: ",") }
}
