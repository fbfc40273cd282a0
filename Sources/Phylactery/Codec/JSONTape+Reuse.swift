import Synchronization

extension JSONTape {
    /// Tape storage kept between documents, so decoding one row after another does not allocate a
    /// fresh entry array per document.
    ///
    /// A tape takes about twice the document's size (one 16-byte entry per value and key, reserved
    /// as one per 8 bytes of text), and a fresh allocation of that size is fresh pages the kernel has
    /// to fault in and zero: for a 1 MB document, 2 MB of page faults before the first value is read.
    /// ``JSONBDecoder`` takes an array from here and puts it back when the value is decoded, so the
    /// same pages serve the next document. A few arrays are kept (concurrent decodes each take one),
    /// none above ``largestKept`` entries, so a rare huge document does not pin its tape.
    enum Spares {
        /// How many arrays are kept: enough for the decodes that run at once on a small machine.
        static let count = 4
        /// The largest capacity kept, in entries: 256 Ki entries (4 MiB), a 2 MB document's tape.
        static let largestKept = 1 << 18

        private static let arrays = Mutex<[[Entry]]>([])

        /// An empty array, with the capacity of a previous tape when one is spare.
        static func take() -> [Entry] {
            arrays.withLock { $0.popLast() } ?? []
        }

        /// Gives `entries` back for the next document (dropped when too large or enough are kept).
        static func putBack(_ entries: inout [Entry]) {
            guard entries.capacity <= largestKept else { return }
            entries.removeAll(keepingCapacity: true)
            var spare: [Entry] = []
            swap(&spare, &entries)
            arrays.withLock { arrays in
                if arrays.count < count { arrays.append(spare) }
            }
        }
    }
}
