import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Puts a restored data directory in place of the current one in one step.
///
/// On Linux `renameat2(RENAME_EXCHANGE)` swaps the two directories atomically: at every instant the
/// home's `data` is either the old cluster or the new one, never missing (a server started in a gap
/// would `initdb` an empty cluster there). The old one is then renamed aside. Elsewhere, or on a file
/// system without the exchange, two renames are used, which the usage lock keeps any start out of.
enum DataDirectorySwap {
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// Replaces `current` by `replacement` and moves the old `current` to `aside`.
    /// Returns `aside` when there was an old directory, `nil` when `current` did not exist.
    static func swap(_ replacement: String, into current: String, keepingOldAt aside: String) throws(BackupError) -> String? {
        guard FileManager.default.fileExists(atPath: current) else {
            guard rename(replacement, current) == 0 else { throw DurableFile.failure("move the restored cluster to", current) }
            try DurableFile.syncDirectory((current as NSString).deletingLastPathComponent)
            return nil
        }
        if exchange(replacement, current) {
            // `replacement` now names the old cluster.
            guard rename(replacement, aside) == 0 else { throw DurableFile.failure("move the previous cluster to", aside) }
        } else {
            guard rename(current, aside) == 0 else { throw DurableFile.failure("move the previous cluster to", aside) }
            guard rename(replacement, current) == 0 else {
                let error = DurableFile.failure("move the restored cluster to", current)
                _ = rename(aside, current)
                throw error
            }
        }
        try DurableFile.syncDirectory((current as NSString).deletingLastPathComponent)
        try DurableFile.syncDirectory((replacement as NSString).deletingLastPathComponent)
        return aside
    }

    /// `renameat2(a, b, RENAME_EXCHANGE)`, looked up at run time (glibc does not export it to Swift).
    private static func exchange(_ a: String, _ b: String) -> Bool {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let renameExchange: UInt32 = 1 << 1
        return renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0
        #else
        return false
        #endif
    }
}
