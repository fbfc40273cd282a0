/// One page of recent traces (``TraceStore/page(_:)``): the traces, newest first, and where the next
/// page starts.
public struct TracePage: Sendable, Hashable, Codable {
    /// The traces of this page, newest first.
    public var traces: [TraceStore.Summary]
    /// The cursor of the next page (``TraceFilter/after``), or `nil` on the last page.
    public var next: TraceCursor?

    /// A page of traces.
    public init(traces: [TraceStore.Summary], next: TraceCursor?) {
        self.traces = traces
        self.next = next
    }
}
