import Foundation

/// Small charts drawn on the server as inline SVG (no script, no style attribute: the CSS colours
/// them by class), so they render under the strict Content-Security-Policy and without JavaScript.
enum SVGChart {
    static let width = 360.0
    static let height = 80.0

    /// Bars, one per value, scaled to the largest; `highlighted` values (same length) are drawn on top
    /// in the "bad" colour (failed jobs over finished ones).
    static func bars(_ values: [Double], highlighted: [Double]? = nil, label: String) -> String {
        let maximum = max(values.max() ?? 0, 1)
        let slot = values.isEmpty ? width : width / Double(values.count)
        var shapes = ""
        for (index, value) in values.enumerated() {
            let barHeight = (value / maximum) * (height - 14)
            let x = Double(index) * slot
            shapes += "<rect class=\"bar\" x=\"\(format(x))\" y=\"\(format(height - barHeight))\" width=\"\(format(max(slot - 1, 0.5)))\" height=\"\(format(barHeight))\"><title>\(format(value))</title></rect>"
            if let highlighted, index < highlighted.count, highlighted[index] > 0 {
                let badHeight = (highlighted[index] / maximum) * (height - 14)
                shapes += "<rect class=\"bar-bad\" x=\"\(format(x))\" y=\"\(format(height - badHeight))\" width=\"\(format(max(slot - 1, 0.5)))\" height=\"\(format(badHeight))\"/>"
            }
        }
        return frame(shapes, label: label, maximum: maximum)
    }

    /// A line through the values (gaps where a value is missing), scaled to the largest; a value with
    /// no neighbour to join (alone between gaps) is drawn as a dot, so one busy minute still shows.
    static func sparkline(_ values: [Double?], label: String) -> String {
        let present = values.compactMap { $0 }
        let maximum = max(present.max() ?? 0, 0.001)
        let step = values.count > 1 ? width / Double(values.count - 1) : width
        var path = ""
        var dots = ""
        for (index, value) in values.enumerated() {
            guard let value else { continue }
            let x = Double(index) * step
            let y = height - (value / maximum) * (height - 14)
            let joinsPrevious = index > 0 && values[index - 1] != nil
            let joinsNext = index + 1 < values.count && values[index + 1] != nil
            if !joinsPrevious && !joinsNext {
                dots += "<circle class=\"dot\" cx=\"\(format(x))\" cy=\"\(format(y))\" r=\"2.5\"/>"
            }
            path += "\(joinsPrevious ? "L" : "M")\(format(x)) \(format(y)) "
        }
        let shape = path.isEmpty ? "" : "<path class=\"line\" d=\"\(path.trimmingCharacters(in: .whitespaces))\"/>"
        return frame(shape + dots, label: label, maximum: maximum)
    }

    /// A horizontal bar from `start` to `start + length`, both fractions of the whole (a waterfall row).
    static func span(start: Double, length: Double) -> String {
        let x = min(max(start, 0), 1) * 1000
        let w = max(min(length, 1 - min(max(start, 0), 1)) * 1000, 2)
        return "<svg viewBox=\"0 0 1000 12\" preserveAspectRatio=\"none\" role=\"img\" aria-hidden=\"true\"><rect x=\"\(format(x))\" y=\"1\" width=\"\(format(w))\" height=\"10\"/></svg>"
    }

    private static func frame(_ shapes: String, label: String, maximum: Double) -> String {
        let escaped = ConsoleHTML.escape(label)
        return "<svg class=\"chart\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escaped)\">"
            + "<title>\(escaped)</title><text x=\"4\" y=\"11\">max \(format(maximum))</text>\(shapes)</svg>"
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
        return String(format: "%.2f", value)
    }
}
