@testable import Phylactery
import Testing

/// How a background writer's batch is split around rows that fail on their data, with a fake server.
@Suite struct BatchSplitterTests {
    /// A "server" that refuses any batch holding a bad row, and fails transiently on cue.
    final class FakeServer: @unchecked Sendable {
        var bad: Set<Int>
        var transientAfter: Int?
        var writes: [[Int]] = []
        init(bad: Set<Int>, transientAfter: Int? = nil) {
            self.bad = bad
            self.transientAfter = transientAfter
        }
        func write(_ rows: [Int]) throws -> Int {
            if let limit = transientAfter, writes.count >= limit {
                throw PhylacteryError(.connectionFailed, "server restarting", sqlState: "57P01")
            }
            writes.append(rows)
            if let row = rows.first(where: bad.contains) {
                throw PhylacteryError(.queryFailed, "row \(row) refused", sqlState: row.isMultiple(of: 2) ? "22P05" : "23514")
            }
            return rows.count
        }
    }

    @Test func aWholeGoodBatchIsOneWrite() async {
        let server = FakeServer(bad: [])
        let report = await BatchSplitter.write(Array(0..<100)) { try server.write($0) }
        #expect(report.written == [100])
        #expect(report.rejected.isEmpty && report.unwritten.isEmpty && report.transientError == nil)
        #expect(server.writes.count == 1)
    }

    @Test func badRowsAreIsolatedAndTheRestWritten() async {
        let server = FakeServer(bad: [17, 64])
        let report = await BatchSplitter.write(Array(0..<100)) { try server.write($0) }
        #expect(report.written.reduce(0, +) == 98)
        #expect(report.rejected.map(\.item).sorted() == [17, 64])
        #expect(report.rejected.allSatisfy { FailureClass($0.error) == .data })
        // Every good row written exactly once.
        let stored = server.writes.filter { !$0.contains(where: server.bad.contains) }.flatMap { $0 }
        #expect(stored.sorted() == Array(0..<100).filter { $0 != 17 && $0 != 64 })
        #expect(server.writes.count < 30, "about 2·log2(n) writes per bad row, not one per row")
    }

    @Test func aTransientFailureStopsAndHandsBackWhatIsLeftInOrder() async {
        let server = FakeServer(bad: [3], transientAfter: 3)
        let report = await BatchSplitter.write(Array(0..<8)) { try server.write($0) }
        #expect(report.transientError != nil)
        #expect(FailureClass(report.transientError!) == .transient)
        let written = server.writes.filter { !$0.contains(3) }.flatMap { $0 }
        #expect(Set(written).isDisjoint(with: report.unwritten))
        #expect(Set(written + report.unwritten + report.rejected.map(\.item)) == Set(0..<8))
        #expect(report.unwritten == report.unwritten.sorted())
    }

    @Test func failureClasses() {
        for state in ["22P05", "22021", "23505", "23514", "54000"] {
            #expect(FailureClass(PhylacteryError(.queryFailed, "x", sqlState: state)) == .data, "\(state)")
        }
        for state in ["57P01", "08006", "55P03", "57014", "40001", "40P01", "42P01"] {
            #expect(FailureClass(PhylacteryError(.queryFailed, "x", sqlState: state)) == .transient, "\(state)")
        }
        #expect(FailureClass(PhylacteryError(.connectionFailed, "no server")) == .transient)
        // The state of a wrapped error counts.
        let wrapped = PhylacteryError(.transactionFailed, "x", underlying: PhylacteryError(.queryFailed, "y", sqlState: "23505"))
        #expect(FailureClass(wrapped) == .data)
    }
}
