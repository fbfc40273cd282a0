import PhylacteryTestSupport

/// Waiting for the page to reach a state, with a deadline (never a fixed sleep): the page loads,
/// redirects and refreshes by itself, so a test asks "until when" instead of "how long".
extension WebDriverSession {
    /// Waits until `condition` holds, checking again and again until `timeout`; an element that is not
    /// there yet or was just replaced counts as "not yet". Throws `ConditionTimedOut` naming `what`.
    func waitUntil(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        try await eventually(what, timeout: timeout) {
            do {
                return try await condition()
            } catch let error as WebDriverError where error.isTransientElementError {
                return false
            }
        }
    }

    /// Waits for an element matching `selector` and returns it.
    func waitForElement(_ selector: String, timeout: Duration = .seconds(30)) async throws -> WebElement {
        var found: WebElement?
        try await self.waitUntil("an element matching \(selector) on \((try? await self.currentURL()) ?? "the page")", timeout: timeout) {
            found = try await self.findElements(selector).first
            return found != nil
        }
        return found!
    }

    /// Waits until the text of the element matching `selector` is `expected` and returns it.
    func waitForText(_ expected: String, in selector: String, timeout: Duration = .seconds(30)) async throws {
        var last = "(no such element)"
        do {
            try await self.waitUntil("\(selector) to read \"\(expected)\"", timeout: timeout) {
                guard let element = try await self.findElements(selector).first else { return false }
                last = try await self.text(of: element)
                return last == expected
            }
        } catch let timedOut as ConditionTimedOut {
            throw WebDriverError(.timedOut, "\(timedOut); it reads \"\(last)\"")
        }
    }
}
