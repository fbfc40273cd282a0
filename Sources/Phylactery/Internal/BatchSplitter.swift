/// Writes a batch for a background writer so that one bad row cannot hold back the others.
///
/// The batch is written in one call. When that fails on its data (``FailureClass/data``: a value the
/// server refuses, a constraint a row violates), it is split in halves and each half is written on
/// its own, down to single rows: the good rows are written at once and the rows that fail alone
/// are handed back with their errors. A failure of the server or the connection
/// (``FailureClass/transient``) stops the run: what was not written yet is handed back to be
/// retried whole after a backoff. One bad row among n costs about 2·log₂ n extra writes.
package enum BatchSplitter {
    /// What happened to a batch.
    package struct Report<Item, Written> {
        /// The result of each successful write, in order.
        package var written: [Written] = []
        /// Rows that failed on their own, with the error of their single-row write.
        package var rejected: [(item: Item, error: any Error)] = []
        /// Rows not written because a transient failure stopped the run (in their original order).
        package var unwritten: [Item] = []
        /// The transient failure that stopped the run, if one did.
        package var transientError: (any Error)?
    }

    /// Writes `items` through `write`, splitting on data failures as described above.
    package static func write<Item, Written>(
        _ items: [Item],
        _ write: ([Item]) async throws -> Written
    ) async -> Report<Item, Written> {
        var report = Report<Item, Written>()
        await self.write(items[...], write, into: &report)
        return report
    }

    private static func write<Item, Written>(
        _ items: ArraySlice<Item>,
        _ write: ([Item]) async throws -> Written,
        into report: inout Report<Item, Written>
    ) async {
        guard !items.isEmpty else { return }
        if report.transientError != nil {
            report.unwritten.append(contentsOf: items)
            return
        }
        do {
            report.written.append(try await write(Array(items)))
        } catch {
            switch FailureClass(error) {
            case .transient:
                report.transientError = error
                report.unwritten.append(contentsOf: items)
            case .data where items.count == 1:
                report.rejected.append((items[items.startIndex], error))
            case .data:
                let middle = items.startIndex + items.count / 2
                await self.write(items[..<middle], write, into: &report)
                await self.write(items[middle...], write, into: &report)
            }
        }
    }
}
