/// Draws a ``Trace`` as an indented timeline for a terminal:
///
/// ```
/// trace 4bf92f3577b34da6a3ce929d0e0e4736 · demo.job · 4 spans · 12.3 ms · 1 error
///    offset   duration  timeline
///    0.0 ms    12.3 ms  |##############################|  demo.job
///    0.1 ms     2.1 ms  |#####                         |  ├─ claim
///    2.3 ms     8.0 ms  |     ####################     |  ├─ handler
///    2.4 ms     1.0 ms  |     ##                       |  │  └─ fetch  ✗ timed out
///   10.4 ms     1.9 ms  |                         #####|  └─ complete
/// ```
///
/// Each bar sits where the span ran within the whole trace; names are indented by depth.
public enum TraceTimeline {
    /// The timeline as text, one span per line; `width` is the bar's width in characters.
    /// With `details`, each span's attributes and events follow it. For one page of a trace
    /// (``Trace/isPartial``) the header names the spans shown, and bars span that page's time.
    ///
    /// Linear in the number of spans, and without recursion, so a deep or wide trace draws at once.
    public static func render(_ trace: Trace, width: Int = 30, details: Bool = false) -> String {
        let (start, end) = trace.bounds
        let total = max(end - start, 1)
        let roots = trace.roots
        let rootName = roots.first?.name ?? "?"
        var lines: [String] = []
        let count = trace.totalSpanCount
        var header = "trace \(trace.id) · \(rootName) · \(count) span\(count == 1 ? "" : "s")"
        if trace.isPartial {
            header += trace.spans.isEmpty
                ? " (none shown after the first \(trace.offset))"
                : " (\(trace.offset + 1)–\(trace.offset + trace.spans.count) shown)"
        }
        header += " · \(format(microseconds: end - start))"
        let errors = trace.errorCount
        if errors > 0 { header += " · \(errors) error\(errors == 1 ? "" : "s")\(trace.isPartial ? " shown" : "")" }
        lines.append(header)
        lines.append(pad("offset", 9) + "  " + pad("duration", 9) + "  timeline")
        let width = max(width, 4)
        let childrenByParent = trace.childrenByParent

        func draw(_ span: SpanRecord, prefix: String, isLast: Bool, isRoot: Bool) -> String {
            let offset = span.startMicroseconds - start
            let from = Int((Double(offset) / Double(total) * Double(width)).rounded(.down))
            var length = Int((Double(span.durationMicroseconds) / Double(total) * Double(width)).rounded())
            length = max(1, min(length, width - min(from, width - 1)))
            let first = min(max(from, 0), width - 1)
            let bar = String(repeating: " ", count: first) + String(repeating: "#", count: length) + String(repeating: " ", count: max(0, width - first - length))
            let branch = isRoot ? "" : (isLast ? "└─ " : "├─ ")
            var line = pad(format(microseconds: offset), 9) + "  " + pad(format(microseconds: span.durationMicroseconds), 9) + "  |" + bar + "|  " + prefix + branch + span.name
            if span.status == .error { line += "  ✗ " + (span.statusMessage ?? "error") }
            lines.append(line)
            let childPrefix = isRoot ? prefix : prefix + (isLast ? "   " : "│  ")
            if details {
                let indent = String(repeating: " ", count: 9 + 2 + 9 + 2 + width + 4) + childPrefix + "   "
                for key in span.attributes.keys.sorted() { lines.append(indent + "· \(key) = \(span.attributes[key]!)") }
                for event in span.events {
                    let attributes = event.attributes.keys.sorted().map { "\($0)=\(event.attributes[$0]!)" }.joined(separator: " ")
                    lines.append(indent + "@ +\(format(microseconds: event.timeMicroseconds - start)) \(event.name)\(attributes.isEmpty ? "" : " " + attributes)")
                }
            }
            return childPrefix
        }

        // Depth first, in start order, with an explicit stack (pushed in reverse so the first child pops first).
        var stack: [(span: SpanRecord, prefix: String, isLast: Bool, isRoot: Bool)] = roots.reversed().map { ($0, "", true, true) }
        while let next = stack.popLast() {
            let childPrefix = draw(next.span, prefix: next.prefix, isLast: next.isLast, isRoot: next.isRoot)
            let children = childrenByParent[next.span.spanID] ?? []
            for (index, child) in children.enumerated().reversed() {
                stack.append((child, childPrefix, index == children.count - 1, false))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `850 µs`, `12.3 ms`, `1.25 s`.
    public static func format(microseconds: Int64) -> String {
        let value = Double(microseconds)
        if abs(value) < 1000 { return "\(microseconds) µs" }
        if abs(value) < 1_000_000 { return decimal(value / 1000) + " ms" }
        return decimal(value / 1_000_000) + " s"
    }

    /// One decimal below 100, none above.
    static func decimal(_ value: Double) -> String {
        if abs(value) >= 100 { return String(Int(value.rounded())) }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
