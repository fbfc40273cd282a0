/// A reference to an element of the page a ``WebDriverSession`` shows, as the W3C protocol names it.
///
/// Valid until the page navigates or the element is removed (then commands on it fail with
/// `stale element reference`).
struct WebElement: Codable, Hashable, Sendable {
    /// The key under which W3C WebDriver sends and expects an element reference.
    static let referenceKey = "element-6066-11e4-a52e-4f735466cecf"

    /// The driver's opaque id for the element.
    let id: String

    init(id: String) {
        self.id = id
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.id = try container.decode(String.self, forKey: Key(stringValue: Self.referenceKey))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(self.id, forKey: Key(stringValue: Self.referenceKey))
    }
}
