public import Foundation
import PostgresNIO

extension VectorMemory {
    /// Memories by status and by embedding space, with the forgotten count (``MemoryStatistics``):
    /// a count per status over the status index, and ``stats()`` for the spaces.
    public func statistics() async throws -> MemoryStatistics {
        let doing = "Counting memories"
        let rows = try await self.transaction.rows("""
            SELECT status, count(*)::int8 FROM vectors.memories GROUP BY status
            UNION ALL SELECT '', count(*)::int8 FROM vectors.forgotten
            """, doing: doing)
        var byStatus: [MemoryStatus: Int] = [:]
        var forgotten = 0
        for row in rows {
            do {
                let (status, count) = try row.decode((String, Int64).self)
                if status.isEmpty { forgotten = Int(count) } else if let status = MemoryStatus(rawValue: status) { byStatus[status] = Int(count) }
            } catch {
                throw self.transaction.aborting(error, doing: doing, file: #fileID, line: #line)
            }
        }
        let defaultSpace = try await self.defaultSpace()
        var spaces: [EmbeddingSpace: [MemoryStatistics.StatusCount]] = [:]
        for record in try await self.spaces() { spaces[record.space] = [] }
        for count in try await self.stats() {
            spaces[count.space, default: []].append(MemoryStatistics.StatusCount(status: count.status, count: count.count))
        }
        let order = Dictionary(uniqueKeysWithValues: MemoryStatus.allCases.enumerated().map { ($1, $0) })
        return MemoryStatistics(
            total: byStatus.values.reduce(0, +),
            byStatus: MemoryStatus.allCases.map { MemoryStatistics.StatusCount(status: $0, count: byStatus[$0] ?? 0) },
            spaces: spaces.map { space, counts in
                let sorted = counts.sorted { order[$0.status, default: 0] < order[$1.status, default: 0] }
                return MemoryStatistics.SpaceCount(space: space, isDefault: space == defaultSpace, byStatus: sorted, vectors: counts.reduce(0) { $0 + $1.count })
            }.sorted { ($0.space.model, $0.space.fingerprint) < ($1.space.model, $1.space.fingerprint) },
            forgotten: forgotten)
    }

    /// One memory with its status history, the spaces it has vectors in, and its `neighbours`
    /// nearest memories in `space` (the default space when `nil`) found by its own vector, through
    /// the space's index like any search. `nil` when no memory has the id or its label is not in
    /// `visible`.
    ///
    /// - Parameters:
    ///   - neighbours: how many neighbours, 0…100 (0 skips the search).
    ///   - historyLimit: how many status changes to return at most (oldest first), 0…1000.
    ///   - visible: the labels the caller may see, for the memory and its neighbours.
    /// - Throws: ``PhylacteryError/Code/invalidArgument`` for counts out of range.
    public func detail(of id: UUID, neighbours: Int = 5, in space: EmbeddingSpace? = nil, historyLimit: Int = 100,
                       visible: Set<Sensitivity> = Sensitivity.visible(upTo: .private)) async throws -> MemoryDetail? {
        guard (0...100).contains(neighbours), (0...1000).contains(historyLimit) else {
            throw PhylacteryError(.invalidArgument, "neighbours must be 0…100 and historyLimit 0…1000; got \(neighbours) and \(historyLimit)")
        }
        guard let memory = try await self.transaction.find(Memory.self, id: id), let label = memory.sensitivity, visible.contains(label) else {
            return nil
        }
        let history = try await self.statusHistory(of: id, offset: 0, limit: historyLimit)
        var historyCount = history.count
        if history.count == historyLimit { historyCount = try await self.statusChangeCount(of: id) }
        let doing = "Reading a memory's embedding spaces"
        let spaces = try await self.transaction.rows("""
            SELECT s.model, s.fingerprint, s.dimensions FROM vectors.embeddings AS e JOIN vectors.spaces AS s ON s.id = e.space_id
            WHERE e.memory_id = \(id) ORDER BY s.model, s.fingerprint
            """, doing: doing).map { row in
            do {
                let (model, fingerprint, dimensions) = try row.decode((String, String, Int32).self)
                return EmbeddingSpace(model: model, fingerprint: fingerprint, dimensions: Int(dimensions))
            } catch {
                throw self.transaction.aborting(error, doing: doing, file: #fileID, line: #line)
            }
        }
        var searched: EmbeddingSpace?
        var nearest: [MemoryDetail.Neighbour] = []
        var target = space
        if target == nil, neighbours > 0 { target = try await self.defaultSpace() }
        if neighbours > 0, let target, let vector = try await self.embedding(of: id, in: target) {
            searched = target
            let options = SearchOptions(k: neighbours + 1, statuses: Set(MemoryStatus.allCases), sensitivities: visible)
            nearest = try await self.search(vector, in: target, options: options)
                .filter { $0.memory.id != id }
                .prefix(neighbours)
                .map { MemoryDetail.Neighbour(id: $0.memory.id, content: $0.memory.content, status: $0.memory.status, owner: $0.memory.owner, distance: $0.distance) }
        }
        return MemoryDetail(
            id: memory.id, content: memory.content, metadata: memory.metadata.text, status: memory.status, owner: memory.owner,
            source: memory.source, sensitivity: label, createdAt: memory.createdAt, updatedAt: memory.updatedAt,
            statusChangedBy: memory.statusChangedBy, statusChangedAt: memory.statusChangedAt, history: history,
            historyCount: historyCount, spaces: spaces, neighbourSpace: searched, neighbours: nearest)
    }
}
