#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Bytes that survive a JSON round trip exactly: a string when they are valid UTF-8, else
/// `{"base64": "..."}`.
public struct ExactBytes: Codable, Hashable, Sendable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private struct Encoded: Codable { var base64: String }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            bytes = Array(text.utf8)
        } else {
            let encoded = try container.decode(Encoded.self)
            guard let data = Data(base64Encoded: encoded.base64) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "bad base64")
            }
            bytes = Array(data)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let text = String(validating: bytes, as: UTF8.self) {
            try container.encode(text)
        } else {
            try container.encode(Encoded(base64: Data(bytes).base64EncodedString()))
        }
    }
}
