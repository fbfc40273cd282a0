import Foundation
import Phylactery
import PhylacteryTestSupport

/// The document the JSONB benchmark stores: a plugin run's execution history, the kind of large
/// nested state the daemon snapshots. Both types have the generated fast path (`@JSONBCodable`); the
/// benchmark measures it against their synthesized `Codable` conformance.
@JSONBCodable
struct ExecutionHistory: Codable, Equatable, Sendable {
    @JSONBCodable
    struct Step: Codable, Equatable, Sendable {
        var index: Int
        var name: String
        var startedAt: Date
        var durationMs: Double
        var ok: Bool
        var attempt: Int
        var input: [String: String]
        var output: String
        var tokens: Int
        var scores: [Double]
        var tags: [String]
        var error: String?
        var children: [Step]
    }

    var runID: UUID
    var plugin: String
    var version: String
    var startedAt: Date
    var finishedAt: Date?
    var status: String
    var environment: [String: String]
    var steps: [Step]

    /// A document of roughly `targetBytes` of JSON, the same for the same seed.
    static func make(targetBytes: Int, seed: UInt64 = 42) -> ExecutionHistory {
        var rng = SeededRandom(seed: seed)
        let words = ["claim", "lease", "embed", "recall", "consecrate", "supersede", "trace", "flush", "vector", "fact",
                     "ghoul", "chamber", "ledger", "snapshot", "résumé", "naïve", "日本語", "emoji 🦀", "quote \"x\"", "path\\to"]
        func sentence(_ count: Int) -> String {
            (0..<count).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ")
        }
        let start = Date(timeIntervalSince1970: 1_764_000_000)
        func step(_ index: Int, depth: Int) -> Step {
            let children = depth < 2 && index % 4 == 0 ? (0..<2).map { step(index * 10 + $0, depth: depth + 1) } : []
            return Step(
                index: index, name: "step-\(index) \(words[index % words.count])",
                startedAt: start.addingTimeInterval(Double(index) * 0.25),
                durationMs: Double(rng.next() % 100_000) / 7.0, ok: index % 13 != 0, attempt: Int(rng.next() % 3) + 1,
                input: ["prompt": sentence(12), "model": "m-\(index % 5)", "temperature": "0.\(index % 10)"],
                output: sentence(30), tokens: Int(rng.next() % 4096),
                scores: (0..<6).map { _ in Double(rng.next() % 1_000_000) / 1_000_000 },
                tags: ["t\(index % 7)", "batch-\(index / 50)"],
                error: index % 13 == 0 ? "timeout after \(index) ms\nretrying" : nil,
                children: children)
        }
        var history = ExecutionHistory(
            runID: UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!, plugin: "phylactery.bench", version: "1.0.0",
            startedAt: start, finishedAt: start.addingTimeInterval(3600), status: "finished",
            environment: ["host": "bench", "cores": "2", "region": "local"], steps: [])
        // Size the document by extrapolating from a small one, then top it up until it is large enough.
        let encoder = JSONEncoder()
        func size() -> Int { (try? encoder.encode(history).count) ?? 0 }
        var index = 0
        let empty = size()
        repeat {
            history.steps.append(step(index, depth: 0))
            index += 1
        } while index < 8 && size() < targetBytes
        let perStep = max(1, (size() - empty) / index)
        while true {
            let missing = targetBytes - size()
            if missing <= 0 { break }
            for _ in 0..<max(1, missing / perStep) {
                history.steps.append(step(index, depth: 0))
                index += 1
            }
        }
        return history
    }
}
