import Foundation
@testable import PhylacteryConsole
import Testing

/// The server-drawn charts: no database needed.
@Suite struct SVGChartTests {
    @Test func aLoneValueIsADotAndNeighboursAreJoined() {
        // Minutes 1 and 3–4 had finished jobs; 0 and 2 had none.
        let svg = SVGChart.sparkline([nil, 3, nil, 1, 2], label: "mean wait")
        #expect(svg.components(separatedBy: "<circle class=\"dot\"").count - 1 == 1, "\(svg)")
        #expect(svg.contains("<circle class=\"dot\" cx=\"90\" cy=\"14\" r=\"2.5\"/>"), "\(svg)")
        // The lone value starts a move, the pair is one segment: M (lone) M (3) L (4).
        #expect(svg.contains("d=\"M90 14 M270 58 L360 36\""), "\(svg)")
    }

    @Test func noValuesDrawNothingButTheFrame() {
        let svg = SVGChart.sparkline([nil, nil], label: "mean run")
        #expect(!svg.contains("<path") && !svg.contains("<circle"))
        #expect(svg.hasPrefix("<svg class=\"chart\"") && svg.contains("<title>mean run</title>"))
    }

    @Test func labelsAreEscaped() {
        let svg = SVGChart.bars([1, 2], label: "a <b> & \"c\"")
        #expect(svg.contains("aria-label=\"a &lt;b&gt; &amp; &quot;c&quot;\""), "\(svg)")
        #expect(!svg.contains("<b>"))
    }
}
