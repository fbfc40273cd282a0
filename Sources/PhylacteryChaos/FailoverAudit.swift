import Foundation

/// The verdict on a failover run, from the ledger and the new primary's rows.
struct FailoverAudit {
    /// Effect rows on the new primary, by job: how many, and the port of the server that wrote them.
    var effects: [UUID: [Int]]
    /// The jobs of the run (their ids).
    var jobs: Set<UUID>
    var oldPort: Int
    var newPort: Int

    /// Jobs with no effect row on the new primary.
    var missing: Int { self.jobs.filter { (self.effects[$0]?.count ?? 0) == 0 }.count }
    /// Jobs with more than one effect row on the new primary.
    var duplicated: Int { self.effects.values.filter { $0.count > 1 }.count }

    /// Commits the old primary acknowledged that the new primary does not have: the job's effect
    /// there was not written by the old primary.
    func lostCommits(_ commits: [FailoverLedger.Commit]) -> [FailoverLedger.Commit] {
        commits.filter { $0.port == self.oldPort && !(self.effects[$0.job] ?? []).contains(self.oldPort) }
    }

    /// Jobs whose effect was committed (acknowledged) more than once.
    func committedTwice(_ commits: [FailoverLedger.Commit]) -> Set<UUID> {
        var count = [UUID: Int]()
        for commit in commits { count[commit.job, default: 0] += 1 }
        return Set(count.filter { $0.value > 1 }.keys)
    }

    /// Jobs committed more than once where no earlier commit was lost: a job run again after its
    /// completion was safely on the new primary. Never allowed, in either mode.
    func unjustifiedReruns(_ commits: [FailoverLedger.Commit]) -> Set<UUID> {
        let lost = Dictionary(grouping: self.lostCommits(commits), by: \.job).mapValues(\.count)
        var count = [UUID: Int]()
        for commit in commits { count[commit.job, default: 0] += 1 }
        return Set(count.filter { $0.value - (lost[$0.key] ?? 0) > 1 }.keys)
    }

    /// Jobs whose only commits had an unknown outcome and that turned out committed on the new
    /// primary (written by the old one and replicated before it died).
    func unknownButCommitted(_ unknown: [UUID: Int], _ commits: [FailoverLedger.Commit]) -> Int {
        let acknowledged = Set(commits.map(\.job))
        return unknown.keys.filter { !acknowledged.contains($0) && (self.effects[$0] ?? []).contains(self.oldPort) }.count
    }
}

/// What a failover run prints: its lines, its failures, its `RESULT` figures.
struct FailoverReport {
    var lines: [String] = []
    var failures: [String] = []
    var json = "{}"
}
