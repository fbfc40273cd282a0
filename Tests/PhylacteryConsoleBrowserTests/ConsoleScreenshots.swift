import Foundation

/// Where the browser test saves its screenshots: `PHYLACTERY_SCREENSHOTS` (the test command sets it),
/// else `.build/console-screenshots` in the package (git-ignored, as the README says).
enum ConsoleScreenshots {
    static var directory: String {
        if let folder = ProcessInfo.processInfo.environment["PHYLACTERY_SCREENSHOTS"], !folder.isEmpty { return folder }
        // This file is Tests/PhylacteryConsoleBrowserTests/ConsoleScreenshots.swift: three folders below the package.
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.appendingPathComponent(".build/console-screenshots").path
    }

    /// The file for the page `name` (`queue` → `…/queue.png`).
    static func path(_ name: String) -> String {
        "\(self.directory)/\(name).png"
    }
}
