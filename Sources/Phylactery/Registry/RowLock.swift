/// A row lock taken by a locking read (`SELECT … FOR UPDATE` and its weaker kin).
///
/// ```swift
/// // Claim one queued run; a second worker racing this skips the row instead of waiting.
/// let run = try await tx.fetch(Run.self, where: "status = 'queued'", orderBy: "created_at, id",
///                              limit: 1, lock: .forUpdate(.skipLocked)).first
/// ```
///
/// The lock is held until the transaction ends. With ``WaitPolicy/wait`` (the default) a read
/// waits for a conflicting lock to be released; with ``WaitPolicy/skipLocked`` it leaves locked
/// rows out of the result; with ``WaitPolicy/noWait`` it fails at once with
/// ``PhylacteryError/Code/lockNotAvailable``.
public struct RowLock: Sendable, Hashable, CustomStringConvertible {
    /// How strong the lock is (PostgreSQL's row-level lock modes).
    public enum Strength: String, Sendable, Hashable, CaseIterable {
        /// `FOR UPDATE`: for rows about to be updated or deleted; blocks every other lock.
        case update = "FOR UPDATE"
        /// `FOR NO KEY UPDATE`: for updates that leave the key alone; foreign-key checks
        /// (`FOR KEY SHARE`) of other transactions still go through.
        case noKeyUpdate = "FOR NO KEY UPDATE"
        /// `FOR SHARE`: the rows stay as read until the transaction ends; other readers may share it.
        case share = "FOR SHARE"
        /// `FOR KEY SHARE`: only the key must stay; blocks deletes and key changes, not other updates.
        case keyShare = "FOR KEY SHARE"
    }

    /// What a read does about rows another transaction holds a conflicting lock on.
    public enum WaitPolicy: String, Sendable, Hashable, CaseIterable {
        /// Wait for the other transaction to end (PostgreSQL's default).
        case wait = ""
        /// `SKIP LOCKED`: leave locked rows out (work queues: each worker gets rows no other holds).
        case skipLocked = "SKIP LOCKED"
        /// `NOWAIT`: fail at once with ``PhylacteryError/Code/lockNotAvailable``.
        case noWait = "NOWAIT"
    }

    /// The lock mode.
    public var strength: Strength
    /// What happens on a conflicting lock.
    public var waitPolicy: WaitPolicy

    /// A lock of this strength and wait policy.
    public init(_ strength: Strength, _ waitPolicy: WaitPolicy = .wait) {
        self.strength = strength
        self.waitPolicy = waitPolicy
    }

    /// `FOR UPDATE`, waiting for conflicting locks.
    public static let forUpdate = RowLock(.update)
    /// `FOR UPDATE` with a wait policy (`.forUpdate(.skipLocked)`).
    public static func forUpdate(_ policy: WaitPolicy) -> RowLock { RowLock(.update, policy) }
    /// `FOR NO KEY UPDATE`, waiting for conflicting locks.
    public static let forNoKeyUpdate = RowLock(.noKeyUpdate)
    /// `FOR NO KEY UPDATE` with a wait policy.
    public static func forNoKeyUpdate(_ policy: WaitPolicy) -> RowLock { RowLock(.noKeyUpdate, policy) }
    /// `FOR SHARE`, waiting for conflicting locks.
    public static let forShare = RowLock(.share)
    /// `FOR SHARE` with a wait policy.
    public static func forShare(_ policy: WaitPolicy) -> RowLock { RowLock(.share, policy) }
    /// `FOR KEY SHARE`, waiting for conflicting locks.
    public static let forKeyShare = RowLock(.keyShare)
    /// `FOR KEY SHARE` with a wait policy.
    public static func forKeyShare(_ policy: WaitPolicy) -> RowLock { RowLock(.keyShare, policy) }

    /// The clause as it ends a `SELECT`: `FOR UPDATE SKIP LOCKED`. Fixed text, no user input.
    public var description: String {
        self.waitPolicy == .wait ? self.strength.rawValue : self.strength.rawValue + " " + self.waitPolicy.rawValue
    }
}
