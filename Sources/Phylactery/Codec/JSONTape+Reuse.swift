import Synchronization

extension JSONTape {
    /// The memory a parse writes its entries into, kept between documents.
    ///
    /// The parser writes entries through a pointer (no uniqueness or capacity check of an array
    /// append per value) and grows the memory itself when a document needs more; what it leaves here
    /// is the tape of the last document parsed. One storage serves one parse at a time.
    final class Storage {
        /// The entries' memory, `capacity` entries long; `nil` until a parse first needs it.
        var base: UnsafeMutablePointer<Entry>?
        var capacity = 0
        /// How many entries of `base` the last parse wrote.
        var count = 0

        init() {}

        /// The last parsed document's entries; valid until the next parse into this storage.
        var entries: UnsafeBufferPointer<Entry> { UnsafeBufferPointer(start: base, count: count) }

        deinit { base?.deallocate() }
    }

    /// Tape storage kept between documents, so decoding one row after another does not allocate a
    /// fresh tape per document.
    ///
    /// A tape takes about twice the document's size (one 16-byte entry per value and key, reserved
    /// as one per 8 bytes of text), and a fresh allocation of that size is fresh pages the kernel has
    /// to fault in and zero: for a 1 MB document, 2 MB of page faults before the first value is read.
    /// ``JSONBDecoder`` takes a storage from here and puts it back when the value is decoded, so the
    /// same pages serve the next document. A few are kept (concurrent decodes each take one), none
    /// above ``largestKept`` entries, so a rare huge document does not pin its tape.
    enum Spares {
        /// How many storages are kept: enough for the decodes that run at once on a small machine.
        static let count = 4
        /// The largest capacity kept, in entries: 256 Ki entries (4 MiB), a 2 MB document's tape.
        static let largestKept = 1 << 18

        /// Storages are handed from one decode to the next under the lock, never shared.
        private struct Kept: @unchecked Sendable { var storages: [Storage] = [] }
        private static let kept = Mutex(Kept())

        /// A storage with the capacity of a previous tape when one is spare, else an empty one.
        static func take() -> Storage {
            kept.withLock { $0.storages.popLast() } ?? Storage()
        }

        /// Gives `storage` back for the next document (dropped when too large or enough are kept).
        static func putBack(_ storage: Storage) {
            guard storage.capacity <= largestKept else { return }
            storage.count = 0
            kept.withLock { kept in
                if kept.storages.count < count { kept.storages.append(storage) }
            }
        }
    }
}
