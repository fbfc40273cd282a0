/// The outcome of one verification of a stored backup: when, whether it passed, what was wrong.
///
/// ``Crypt/verify(_:key:progress:)`` records it on the backup's ``BackupRecord/lastVerification``;
/// a backup verified only when it was taken has none (its ``BackupRecord/verifiedAt`` says when).
public struct BackupVerification: Codable, Sendable, Hashable {
    /// The backup verified.
    public var label: String
    /// When the verification finished.
    public var at: RecoveryTime
    /// No problem was found.
    public var passed: Bool
    /// What is wrong, each naming the file (empty when it passed).
    public var problems: [String]

    /// A verification outcome.
    public init(label: String, at: RecoveryTime, passed: Bool, problems: [String]) {
        self.label = label
        self.at = at
        self.passed = passed
        self.problems = problems
    }
}
