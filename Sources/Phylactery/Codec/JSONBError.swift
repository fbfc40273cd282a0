/// Why a document could not be encoded, validated or decoded.
///
/// Decoding errors about the *shape* of a value (a string where a number was expected, a missing key)
/// are Swift's `DecodingError`s with the coding path; ``JSONBError`` covers bytes that are not JSON at
/// all, values that cannot be JSON, and the wire format around them.
public struct JSONBError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. Compare with the static members; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// The bytes are not valid JSON (RFC 8259); ``JSONBError/offset`` says where.
        public static let malformed = Self("malformed")
        /// Nesting deeper than the configured limit.
        public static let tooDeep = Self("tooDeep")
        /// A number does not fit the requested Swift type.
        public static let numberOutOfRange = Self("numberOutOfRange")
        /// NaN or infinity, which JSON cannot represent.
        public static let nonFiniteNumber = Self("nonFiniteNumber")
        /// A jsonb value did not start with the version byte 0x01.
        public static let unsupportedVersion = Self("unsupportedVersion")
        /// The column is neither json nor jsonb.
        public static let typeMismatch = Self("typeMismatch")
        /// An encoder or decoder was used against the `Codable` rules (e.g. two values in one single-value container).
        public static let invalidUse = Self("invalidUse")
        /// Valid JSON that PostgreSQL's jsonb cannot store: a string holding `\u0000` (U+0000). The
        /// message gives its JSON Pointer.
        public static let unstorableCharacter = Self("unstorableCharacter")

        public var description: String { self.name }
    }

    public var code: Code
    /// A readable explanation, without the document's content.
    public var message: String
    /// Byte offset in the input where the problem was found, when parsing.
    public var offset: Int?

    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let offset { return "\(message) (at byte \(offset))" }
        return message
    }
}
