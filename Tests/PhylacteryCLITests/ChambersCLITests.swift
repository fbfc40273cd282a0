import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// `phylactery facts` and `phylactery memory` end to end, as separate processes.
@Suite struct ChambersCLITests {
    @Test func factsAndMemoryVerbs() async throws {
        try await TestDatabase.withFreshDatabase("cli_chambers") { client in
            let environment = ["PHYLACTERY_DATABASE_URL": client.configuration.url.unredacted]
            func run(_ arguments: String...) throws -> PhylacteryProcess { try PhylacteryProcess.run(arguments, environment: environment) }

            let early = try run("facts", "get", "network", "gateway.ip")
            #expect(early.status == 1 && early.output.contains("phylactery migrate auto"), "\(early.output)")
            #expect(try run("migrate", "auto").status == 0)

            let put = try run("facts", "put", "network", "gateway.ip", #""10.0.0.1""#, "--source", "operator")
            #expect(put.status == 0 && put.output.contains(#"recorded network/gateway.ip v1 = "10.0.0.1"  (source operator"#), "\(put.output)")
            let again = try run("facts", "put", "network", "gateway.ip", "1")
            #expect(again.status == 1 && again.output.contains("use supersede"), "\(again.output)")
            let invalid = try run("facts", "put", "network", "x", "not json")
            #expect(invalid.status != 0 && invalid.output.contains("not valid JSON"), "\(invalid.output)")
            #expect(try run("facts", "supersede", "network", "gateway.ip", #""10.0.0.2""#, "--expected-version", "1").status == 0)
            let stale = try run("facts", "supersede", "network", "gateway.ip", #""10.0.0.3""#, "--expected-version", "1")
            #expect(stale.status == 1 && stale.output.contains("is at version 2"), "\(stale.output)")
            let get = try run("facts", "get", "network", "gateway.ip")
            #expect(get.output.hasPrefix(#"network/gateway.ip v2 = "10.0.0.2""#), "\(get.output)")
            let history = try run("facts", "history", "network", "gateway.ip")
            #expect(history.output.split(separator: "\n").map { $0.prefix(24) } == ["network/gateway.ip v1 = ", "network/gateway.ip v2 = "], "\(history.output)")
            let list = try run("facts", "list", "network", "--prefix", "gate")
            #expect(list.output.hasSuffix("1 fact\n"), "\(list.output)")

            let space = EmbeddingSpace(model: "m", fingerprint: "f", dimensions: 3)
            let memory = try await client.transaction { tx in
                try await tx.memory.remember(Memory(content: "three dims", embedding: try Vector([1, 0, 0]), space: space, owner: "core", source: "test"))
            }
            let consecrate = try run("memory", "consecrate", memory.id.uuidString, "--by", "operator")
            #expect(consecrate.output == "\(memory.id) is now consecrated (by operator)\n", "\(consecrate.output)")
            let search = try run("memory", "search", "--vector", "[1, 0.1, 0]", "--model", "m", "--fingerprint", "f", "-k", "3")
            #expect(search.status == 0 && search.output.contains("consecrated  \(memory.id)  three dims") && search.output.hasSuffix("1 match\n"), "\(search.output)")
            let like = try run("memory", "search", "--like", memory.id.uuidString, "--status", "speculative")
            #expect(like.output == "0 matches\n", "\(like.output)")
            let nan = try run("memory", "search", "--vector", "[1, 2]", "--model", "m")
            #expect(nan.status != 0 && nan.output.contains("--model and --fingerprint go together"), "\(nan.output)")
            let stats = try run("memory", "stats")
            #expect(stats.output == "m@f (3 dimensions)  consecrated  1\n1 entries\n", "\(stats.output)")
            _ = try run("memory", "consecrate", memory.id.uuidString, "--by", "reviewer", "--reject")
            let statusLog = try run("memory", "history", memory.id.uuidString)
            let lines = statusLog.output.split(separator: "\n").map(String.init)
            #expect(lines.count == 3 && lines[0].hasSuffix("speculative → consecrated  by operator")
                    && lines[1].hasSuffix("consecrated → rejected  by reviewer")
                    && lines[2] == "\(memory.id) is rejected; 2 status changes", "\(statusLog.output)")
            let badID = try run("memory", "history", "not-a-uuid")
            #expect(badID.status != 0 && badID.output.contains("is not a memory id"), "\(badID.output)")
        }
    }
}
