/// Finding elements of the page and acting on them.
extension WebDriverSession {
    private struct Locator: Encodable {
        let using = "css selector"
        let value: String
    }

    /// The first element matching the CSS `selector`, or a `no such element` ``WebDriverError``.
    func findElement(_ selector: String, in parent: WebElement? = nil) async throws -> WebElement {
        try await self.transport.post("\(self.scope(parent))/element", Locator(value: selector))
    }

    /// Every element matching the CSS `selector`, in document order (none is not an error).
    func findElements(_ selector: String, in parent: WebElement? = nil) async throws -> [WebElement] {
        try await self.transport.post("\(self.scope(parent))/elements", Locator(value: selector))
    }

    private func scope(_ parent: WebElement?) -> String {
        parent.map { "\(self.path)/element/\($0.id)" } ?? self.path
    }

    /// The element's rendered text (what a reader sees, whitespace collapsed).
    func text(of element: WebElement) async throws -> String {
        try await self.transport.get("\(self.path)/element/\(element.id)/text")
    }

    /// The element's attribute `name` as written in the HTML, or `nil` when it has none.
    func attribute(_ name: String, of element: WebElement) async throws -> String? {
        try await self.transport.get("\(self.path)/element/\(element.id)/attribute/\(name)")
    }

    /// The element's tag name, lower-case.
    func tagName(of element: WebElement) async throws -> String {
        try await self.transport.get("\(self.path)/element/\(element.id)/name")
    }

    /// Whether the element is visible on the page.
    func isDisplayed(_ element: WebElement) async throws -> Bool {
        try await self.transport.get("\(self.path)/element/\(element.id)/displayed")
    }

    /// Clicks the element's centre as a user would (a submit button submits its form with its own
    /// `name=value`); fails when something covers it.
    func click(_ element: WebElement) async throws {
        try await self.transport.post("\(self.path)/element/\(element.id)/click")
    }

    private struct Keys: Encodable { let text: String }

    /// Types `text` into a field, after what it holds.
    func type(_ text: String, into element: WebElement) async throws {
        try await self.transport.post("\(self.path)/element/\(element.id)/value", Keys(text: text))
    }

    /// Empties a field.
    func clear(_ element: WebElement) async throws {
        try await self.transport.post("\(self.path)/element/\(element.id)/clear")
    }

    /// Submits the form `element` is (or belongs to), as pressing Enter in it would: the form's own
    /// validation and submit handlers run. W3C WebDriver has no submit command, so this asks the page.
    /// A form whose handler needs to know which button sent it is submitted with ``click(_:)`` instead.
    func submit(_ element: WebElement) async throws {
        let submitted: Bool = try await self.executeScript(
            "const form = arguments[0].form || arguments[0]; if (!(form instanceof HTMLFormElement)) return false; form.requestSubmit(); return true;",
            elements: [element])
        guard submitted else {
            throw WebDriverError(.command, "submit: the element is neither a form nor inside one", w3cError: "invalid argument")
        }
    }
}
