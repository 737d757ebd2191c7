/// A transform that can be named on the command line as `NAME` or `NAME:ARGUMENT`.
public struct TransformDescriptor: Sendable {
    /// The name used on the command line.
    public var name: String
    /// How to call it, e.g. `select:COLS`.
    public var usage: String
    /// One line of help.
    public var summary: String
    /// Makes a transform from the text after the colon (empty when there is none).
    public var make: @Sendable (_ argument: String) throws -> any RowTransform

    public init(name: String, usage: String, summary: String,
                make: @escaping @Sendable (_ argument: String) throws -> any RowTransform) {
        self.name = name
        self.usage = usage
        self.summary = summary
        self.make = make
    }
}

/// The transforms a command line can name: the built-ins and any registered by a custom binary.
public struct TransformRegistry: Sendable {
    public private(set) var descriptors: [TransformDescriptor]

    public init(_ descriptors: [TransformDescriptor]) {
        self.descriptors = descriptors
    }

    /// The built-in transforms.
    public static let builtIn = TransformRegistry([
        SelectTransform.descriptor,
        DropTransform.descriptor,
        FilterTransform.descriptor,
        CountByTransform.descriptor,
        RenameTransform.descriptor,
        ReplaceTransform.descriptor,
        GrepTransform.descriptor,
        SplitTransform.descriptor,
        HeadTransform.descriptor,
        DedupeTransform.descriptor,
        SampleTransform.descriptor,
        ExecTransform.descriptor,
        DelayTransform.descriptor,
    ])

    /// Adds (or replaces) transforms.
    public mutating func register(_ more: [TransformDescriptor]) {
        for d in more {
            descriptors.removeAll { $0.name == d.name }
            descriptors.append(d)
        }
    }

    /// Makes the transform a spec such as `filter:status=refunded` names.
    public func make(_ spec: String) throws -> any RowTransform {
        let name: Substring
        let argument: Substring
        if let colon = spec.firstIndex(of: ":") {
            name = spec[..<colon]
            argument = spec[spec.index(after: colon)...]
        } else {
            name = Substring(spec)
            argument = ""
        }
        guard let descriptor = descriptors.first(where: { $0.name == name }) else {
            throw PipeRunError(.usage, "unknown transform '\(name)' in '\(spec)'; `pipe-run transforms` lists them")
        }
        return try descriptor.make(String(argument))
    }
}

/// Splits `a,b,c` into names, refusing empty ones.
func columnList(_ argument: String, for transform: String) throws -> [String] {
    let names = argument.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard !argument.isEmpty, !names.contains(where: \.isEmpty) else {
        throw PipeRunError(.usage, "\(transform): expected a comma-separated list of columns, got '\(argument)'")
    }
    return names
}
