/// Who may see a fact or a memory: every fact and memory carries one label, and recall and search
/// take the set of labels their caller may see.
///
/// Labels are ordered from least to most guarded (`public < private < secret`), so "up to private"
/// reads as ``visible(upTo:)``. A write that names no label gets the client's
/// ``PhylacteryClient/Configuration/Options/defaultSensitivity`` (``private`` unless configured).
public enum Sensitivity: String, PersistentEnum, Comparable, Sendable {
    /// Anyone who can reach the daemon may see it.
    case `public`
    /// The daemon's own user; the default.
    case `private`
    /// Shown only to a caller that asks for secrets explicitly (credentials, health, anything a user
    /// would not want read aloud).
    case secret

    /// Every label: for a caller that may see everything (the operator, maintenance jobs).
    public static let all: Set<Sensitivity> = Set(allCases)

    /// The labels up to and including `label`: `visible(upTo: .private)` is `[.public, .private]`.
    public static func visible(upTo label: Sensitivity) -> Set<Sensitivity> {
        Set(allCases.filter { $0 <= label })
    }

    /// The order of ``allCases``: `public < private < secret`.
    public static func < (lhs: Sensitivity, rhs: Sensitivity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
