/// The version of the Phylactery library. Backups record it, so a restore can say what wrote them.
public enum PhylacteryVersion {
    /// `major.minor.patch`; the minor number follows the project's issues while it is below 1.0.
    public static let current = "0.14.0"
}
