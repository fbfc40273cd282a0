import Foundation
import Phylactery
import PhylacteryTestSupport
import Testing

/// The memory queries behind the console's pages, against a real server: counts by status and
/// space, and one memory's detail with its history and neighbours.
@Suite struct MemoryConsoleTests {
    static let space = EmbeddingSpace(model: "test-embedder", fingerprint: "v1", dimensions: 3)
    static let other = EmbeddingSpace(model: "test-embedder", fingerprint: "v2", dimensions: 3)

    @Test func statisticsCountMemoriesByStatusAndSpace() async throws {
        try await TestDatabase.withFreshDatabase("memory_statistics") { client in
            try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "memory")
            let empty = try await client.transaction { tx in try await tx.memory.statistics() }
            #expect(empty.total == 0 && empty.spaces.isEmpty && empty.forgotten == 0)
            #expect(empty.byStatus.map(\.status) == MemoryStatus.allCases && empty.byStatus.allSatisfy { $0.count == 0 })

            let stats = try await client.transaction { tx in
                var ids: [UUID] = []
                for i in 0..<5 {
                    let memory = try Memory(content: "memory \(i)", embedding: try Vector([Float(i), 1, 0]), space: Self.space, owner: "core", source: "test")
                    ids.append(try await tx.memory.remember(memory).id)
                }
                try await tx.memory.remember(Memory(content: "no vector yet", owner: "core", source: "test"))
                try await tx.memory.storeEmbedding(try Vector([1, 1, 1]), of: ids[0], in: Self.other)
                try await tx.memory.consecrate(ids[0], by: "operator")
                try await tx.memory.consecrate(ids[1], by: "operator")
                try await tx.memory.reject(ids[2], by: "operator")
                try await tx.memory.forget(ids[4], by: "operator", reason: "test")
                return try await tx.memory.statistics()
            }
            #expect(stats.total == 5 && stats.forgotten == 1)
            #expect(stats.byStatus.map(\.count) == [2, 2, 1], "speculative, consecrated, rejected: \(stats.byStatus)")
            #expect(stats.spaces.map(\.space) == [Self.space, Self.other])
            let first = stats.spaces[0]
            #expect(first.isDefault && first.vectors == 4)
            #expect(first.byStatus.map(\.status) == [.speculative, .consecrated, .rejected] && first.byStatus.map(\.count) == [1, 2, 1])
            #expect(!stats.spaces[1].isDefault && stats.spaces[1].vectors == 1)
            #expect(stats.withoutVector(in: Self.space) == 1 && stats.withoutVector(in: Self.other) == 4)
        }
    }

    @Test func aMemorysDetailHasItsHistorySpacesAndNearestNeighbours() async throws {
        try await TestDatabase.withFreshDatabase("memory_detail") { client in
            try await Migrator(client: client, federation: try Federation(core: Federation.coreModels)).auto(message: "memory")
            let (target, near, far, secret) = try await client.transaction { tx in
                let target = try await tx.memory.remember(try Memory(content: "the gateway is flaky", embedding: try Vector([1, 0, 0]), space: Self.space, owner: "core", source: "chat"))
                let near = try await tx.memory.remember(try Memory(content: "the gateway drops packets", embedding: try Vector([0.9, 0.1, 0]), space: Self.space, owner: "core", source: "chat"))
                let far = try await tx.memory.remember(try Memory(content: "lunch is at noon", embedding: try Vector([0, 0, 1]), space: Self.space, owner: "core", source: "chat"))
                let secret = try await tx.memory.remember(try Memory(content: "the gateway password", embedding: try Vector([0.95, 0.05, 0]), space: Self.space,
                                                                     owner: "core", source: "chat", sensitivity: .secret))
                try await tx.memory.consecrate(target.id, by: "alice")
                try await tx.memory.reject(target.id, by: "bob")
                try await tx.memory.reject(far.id, by: "bob")
                return (target.id, near.id, far.id, secret.id)
            }
            let detail = try #require(try await client.transaction { tx in try await tx.memory.detail(of: target, neighbours: 2) })
            #expect(detail.content == "the gateway is flaky" && detail.status == .rejected && detail.statusChangedBy == "bob")
            #expect(detail.history.map(\.toStatus) == [.consecrated, .rejected] && detail.history.map(\.changedBy) == ["alice", "bob"])
            #expect(detail.historyCount == 2 && detail.metadata == "{}")
            #expect(detail.spaces == [Self.space] && detail.neighbourSpace == Self.space)
            // Nearest first, itself and the secret left out, rejected ones included.
            #expect(detail.neighbours.map(\.id) == [near, far], "\(detail.neighbours)")
            #expect(detail.neighbours[0].distance < detail.neighbours[1].distance)

            // Labels: the secret memory is not shown unless asked for; with it, it is the nearest.
            #expect(try await client.transaction { tx in try await tx.memory.detail(of: secret) } == nil)
            let all = Sensitivity.visible(upTo: .secret)
            let withSecret = try #require(try await client.transaction { tx in try await tx.memory.detail(of: target, neighbours: 1, visible: all) })
            #expect(withSecret.neighbours.map(\.id) == [secret])

            // History limited, count still whole; no neighbours asked for, none searched.
            let short = try #require(try await client.transaction { tx in try await tx.memory.detail(of: target, neighbours: 0, historyLimit: 1) })
            #expect(short.history.count == 1 && short.historyCount == 2 && short.neighbours.isEmpty && short.neighbourSpace == nil)
            // A space the memory has no vector in: no neighbours.
            let elsewhere = try #require(try await client.transaction { tx in try await tx.memory.detail(of: target, in: Self.other) })
            #expect(elsewhere.neighbours.isEmpty && elsewhere.neighbourSpace == nil)

            #expect(try await client.transaction { tx in try await tx.memory.detail(of: UUID()) } == nil)
            await #expect(throws: PhylacteryError.self) { try await client.transaction { tx in try await tx.memory.detail(of: target, neighbours: 101) } }
            let json = try JSONEncoder().encode(detail)
            #expect(try JSONDecoder().decode(MemoryDetail.self, from: json) == detail)
        }
    }
}
