import ArgumentParser

/// `--offset N --limit N` for commands that print a list without a natural end (a trace's spans, a
/// fact's versions, a memory's status changes), so their output stays bounded however long it is.
struct PagingOptions: ParsableArguments {
    /// How many a page holds unless `--limit` says otherwise.
    static let defaultLimit = 1000

    @Option(help: "Skip this many first.")
    var offset = 0

    @Option(help: "Show at most this many.")
    var limit = PagingOptions.defaultLimit

    func validate() throws {
        guard self.offset >= 0 else { throw ValidationError("--offset must not be negative.") }
        guard self.limit >= 1 else { throw ValidationError("--limit must be at least 1.") }
    }

    /// The line that ends a page when `remaining` more come after the `shown` ones:
    /// `… 99000 more spans, use --offset 1000 --limit 1000`.
    func more(_ remaining: Int, _ noun: String, shown: Int) -> String {
        "… \(remaining) more \(noun)\(remaining == 1 ? "" : "s"), use --offset \(self.offset + shown) --limit \(self.limit)"
    }
}
