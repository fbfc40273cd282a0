import Foundation
import Logging
import NIOCore
import Phylactery
import PostgresNIO

extension ExecutionHistory: PostgresCodable {}  // PostgresNIO's default Codable path, for comparison

/// `phylactery-bench jsonb`: Phylactery's JSONB codec against Foundation and PostgresNIO's default
/// Codable path, and against the server's own bounds, all measured in the same run.
struct JSONBBenchmark {
    let client: PhylacteryClient
    let logger: Logger
    var results: [String: Double] = [:]

    /// The sections to run (`--only`); all when `nil`.
    var only: Set<Section>? = nil

    /// The parts of the suite, in the order they run.
    enum Section: String, CaseIterable {
        case memory, codec, fastpath, inserts, reads, instructions
    }

    /// PostgresNIO's default JSON path is Foundation's coders; ours uses the same date representation
    /// (`Date`'s own Codable, a Double) so both sides write and read the same documents.
    static let encoder: JSONBEncoder = {
        var encoder = JSONBEncoder()
        encoder.dateEncodingStrategy = .deferredToDate
        return encoder
    }()
    static let decoder: JSONBDecoder = {
        var decoder = JSONBDecoder()
        decoder.dateDecodingStrategy = .deferredToDate
        return decoder
    }()
    let ours = Self.encoder
    let oursDecoder = Self.decoder

    func runs(_ section: Section) -> Bool { only?.contains(section) ?? true }

    mutating func run() async throws {
        line("Generating documents…")
        let sizes: [(label: String, bytes: Int)] = [("2k", 2 << 10), ("64k", 64 << 10), ("1m", 1 << 20), ("16m", 16 << 20)]
        // Only the documents the chosen sections use (the 16 MB one takes a while).
        var needed: Set<String> = []
        if runs(.memory) { needed.insert("16m") }
        if runs(.codec) { needed.formUnion(sizes.map(\.label)) }
        if runs(.fastpath) { needed.formUnion(["64k", "1m"]) }
        if runs(.inserts) { needed.formUnion(["2k", "1m"]) }
        if runs(.reads) { needed.insert("1m") }
        if runs(.instructions) { needed.formUnion(["64k", "1m"]) }
        var documents: [String: ExecutionHistory] = [:]
        for (label, bytes) in sizes where needed.contains(label) {
            documents[label] = ExecutionHistory.make(targetBytes: bytes)
        }

        if runs(.memory) { try await self.peakMemory(documents["16m"]!) }
        if runs(.codec) { self.codecOnly(sizes: sizes, documents: documents) }
        if runs(.fastpath) { self.fastPath(documents: documents) }
        if runs(.inserts) {
            try await self.inserts(label: "2k", document: documents["2k"]!, rowsPerStatement: 256, statements: 8)
            try await self.inserts(label: "1m", document: documents["1m"]!, rowsPerStatement: 4, statements: 8)
        }
        if runs(.reads) { try await self.reads(label: "1m", document: documents["1m"]!, rows: 32) }
        if runs(.instructions) { try self.instructions(documents: documents) }
    }

    // MARK: Encode and decode only

    mutating func codecOnly(sizes: [(label: String, bytes: Int)], documents: [String: ExecutionHistory]) {
        line("\nEncode / decode only, Codable path (MB/s of JSON text; ratio = ours ÷ Foundation)")
        line("size       bytes   enc ours   enc Fdn   ratio   dec ours   dec Fdn   ratio")
        let foundationEncoder = JSONEncoder()
        let foundationDecoder = JSONDecoder()
        // "ours" here is the Codable path, as before the generated one existed (fastPath(…) measures
        // that one against this), so these figures stay comparable across versions.
        var ours = self.ours
        ours.usesGeneratedCoding = false
        var oursDecoder = self.oursDecoder
        oursDecoder.usesGeneratedCoding = false
        for (label, _) in sizes {
            let document = documents[label]!
            let encoded = try! ours.encodeToBuffer(document)
            let data = try! foundationEncoder.encode(document)
            // Both must read what the other wrote, or the comparison means nothing.
            precondition(try! foundationDecoder.decode(ExecutionHistory.self, from: Data(encoded.readableBytesView)) == document)
            precondition(try! oursDecoder.decode(ExecutionHistory.self, from: ByteBuffer(bytes: data)) == document)
            let bytes = encoded.readableBytes
            let minimum = label == "16m" ? 0.6 : 0.2
            let rounds = label == "16m" ? 3 : 7

            var buffer = ByteBuffer()
            buffer.reserveCapacity(bytes + 1024)
            let encode = Measure.paired(bytesPerCall: bytes, rounds: rounds, minimum: minimum, {
                buffer.clear()
                try! ours.encode(document, into: &buffer)
            }, {
                blackHole(try! foundationEncoder.encode(document))
            })
            let decode = Measure.paired(bytesPerCall: bytes, rounds: rounds, minimum: minimum, {
                blackHole(try! oursDecoder.decode(ExecutionHistory.self, from: encoded))
            }, {
                blackHole(try! foundationDecoder.decode(ExecutionHistory.self, from: data))
            })
            let (encodeOurs, encodeFoundation, encodeRatio) = encode
            let (decodeOurs, decodeFoundation, decodeRatio) = decode
            line(String(format: "%-6@ %10d %10.1f %9.1f %6.2fx %10.1f %9.1f %6.2fx", label as NSString, bytes,
                        encodeOurs, encodeFoundation, encodeRatio, decodeOurs, decodeFoundation, decodeRatio))
            results["encode_mbps_ours_\(label)"] = encodeOurs
            results["encode_mbps_foundation_\(label)"] = encodeFoundation
            results["decode_mbps_ours_\(label)"] = decodeOurs
            results["decode_mbps_foundation_\(label)"] = decodeFoundation
            results["encode_speedup_\(label)"] = encodeRatio
            results["decode_speedup_\(label)"] = decodeRatio
            results["document_bytes_\(label)"] = Double(bytes)
        }
    }

    // MARK: Inserts

    func recreateTable(_ connection: PostgresConnection) async throws {
        _ = try await connection.query("DROP TABLE IF EXISTS public.bench_documents", logger: logger).collect()
        _ = try await connection.query("CREATE UNLOGGED TABLE public.bench_documents (id int NOT NULL, doc jsonb NOT NULL)", logger: logger).collect()
    }

    /// One multi-row INSERT with `rows` documents, bound by `bind`.
    static func insertStatement(rows: Int, firstID: Int, bind: (inout PostgresBindings) throws -> Void) rethrows -> PostgresQuery {
        var bindings = PostgresBindings(capacity: rows * 2)
        var sql = "INSERT INTO public.bench_documents (id, doc) VALUES "
        for row in 0..<rows {
            if row > 0 { sql += "," }
            sql += "($\(row * 2 + 1),$\(row * 2 + 2))"
            bindings.append(firstID + row)
            try bind(&bindings)
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    mutating func inserts(label: String, document: ExecutionHistory, rowsPerStatement: Int, statements: Int) async throws {
        let bytesPerDocument = try ours.encodeToBuffer(document).readableBytes
        let bytesPerRound = bytesPerDocument * rowsPerStatement * statements
        let logger = self.logger
        let ours = self.ours
        // The COPY payload is prepared before timing: the bound is the server's own cost for these bytes.
        var copyPayload = ByteBuffer()
        var text = ByteBuffer()
        try ours.encode(document, into: &text)
        var escaped = ByteBuffer()
        CopyText.escape(text.readableBytesView, into: &escaped)
        for id in 0..<(rowsPerStatement * statements) {
            copyPayload.writeString("\(id)\t")
            copyPayload.writeImmutableBuffer(escaped)
            copyPayload.writeString("\n")
        }

        let measured = try await client.withConnection { connection in
            try await self.recreateTable(connection)
            let truncate = { _ = try await connection.query("TRUNCATE public.bench_documents", logger: logger).collect() }
            // Many rows per round trip: `statements` multi-row INSERTs sent back to back.
            // Small documents make short rounds: more of them keep the median steady.
            let rounds = bytesPerRound < (8 << 20) ? 9 : 5
            let client = self.client
            let documentCount = rowsPerStatement * statements
            let measured = try await Measure.interleaved(bytesPerRun: bytesPerRound, rounds: rounds, prepare: truncate, [
                {
                    // Ours, the batch path: COPY with documents encoded into the stream as it is sent.
                    _ = try await client.transaction { tx in
                        try await tx.copy(into: "bench_documents", columns: ["id", "doc"], encoder: ours) { rows in
                            for id in 0..<documentCount {
                                rows.field(id)
                                try rows.field(json: document)
                                try await rows.endRow()
                            }
                        }
                    }
                },
                {
                    // Ours through multi-row INSERTs, as PostgresNIO's default path below.
                    for statement in 0..<statements {
                        let query = try Self.insertStatement(rows: rowsPerStatement, firstID: statement * rowsPerStatement) { try $0.append(JSONB(document, encoder: ours)) }
                        _ = try await connection.query(query, logger: logger).collect()
                    }
                },
                {
                    for statement in 0..<statements {
                        let query = try Self.insertStatement(rows: rowsPerStatement, firstID: statement * rowsPerStatement) { try $0.append(document) }
                        _ = try await connection.query(query, logger: logger).collect()
                    }
                },
                {
                    try await connection.copyFrom(table: "bench_documents", columns: ["id", "doc"], logger: logger) { writer in
                        try await writer.write(copyPayload)
                    }
                },
            ])
            let stored = try await connection.query("SELECT count(*), sum(length(doc::text)) FROM public.bench_documents", logger: logger).collect().first!.decode((Int, Int).self)
            precondition(stored.0 == rowsPerStatement * statements, "COPY stored \(stored.0) rows")
            return measured
        }
        let rates = measured.rates
        let ratios = measured.ratios
        line("\nInsert \(rowsPerStatement * statements) × \(label) documents into jsonb (MB/s; ratios are medians of per-round ratios)")
        line(String(format: "ours (COPY stream) %.1f   ours (%d-row INSERTs) %.1f   PostgresNIO default (%d-row INSERTs) %.1f   COPY bound %.1f",
                    rates[0], rowsPerStatement, rates[1], rowsPerStatement, rates[2], rates[3]))
        line(String(format: "ours/default %.2fx   ours/COPY bound %.0f%%   (INSERT path: ours/default %.2fx, ours/COPY bound %.0f%%)",
                    ratios[2], 100 * ratios[3], ratios[2] / ratios[1], 100 * ratios[3] / ratios[1]))
        results["insert_mbps_ours_\(label)"] = rates[0]
        results["insert_mbps_ours_insert_\(label)"] = rates[1]
        results["insert_mbps_default_\(label)"] = rates[2]
        results["insert_mbps_copy_\(label)"] = rates[3]
        results["insert_vs_default_\(label)"] = ratios[2]
        results["insert_vs_copy_\(label)"] = ratios[3]
        results["insert_ours_insert_vs_default_\(label)"] = ratios[2] / ratios[1]
        results["insert_ours_insert_vs_copy_\(label)"] = ratios[3] / ratios[1]
    }

    // MARK: Reads

    mutating func reads(label: String, document: ExecutionHistory, rows: Int) async throws {
        let bytesPerDocument = try ours.encodeToBuffer(document).readableBytes
        let bytesPerRound = bytesPerDocument * rows
        let logger = self.logger
        let decoder = self.oursDecoder
        let outcome = try await client.withConnection { connection in
            try await self.recreateTable(connection)
            for start in stride(from: 0, to: rows, by: 4) {
                let query = try Self.insertStatement(rows: min(4, rows - start), firstID: start) { try $0.append(JSONB(document, encoder: ours)) }
                _ = try await connection.query(query, logger: logger).collect()
            }
            let select: PostgresQuery = "SELECT doc FROM public.bench_documents"
            let measured = try await Measure.interleaved(bytesPerRun: bytesPerRound, [
                {
                    // Ours, as the README shows it: the row sequence's `decodeJSON`, each row decoded
                    // straight from the received bytes into a tape kept for the whole loop.
                    var count = 0
                    for try await history in try await connection.query(select, logger: logger).decodeJSON(ExecutionHistory.self, decoder: decoder) {
                        count += history.steps.count
                    }
                    blackHole(count)
                },
                {
                    // PostgresNIO's default: Foundation's JSONDecoder, through a Data copy.
                    var count = 0
                    for try await row in try await connection.query(select, logger: logger) {
                        count += try row.decode(ExecutionHistory.self).steps.count
                    }
                    blackHole(count)
                },
                {
                    // The bound: the same SELECT, bytes handed over without parsing.
                    var total = 0
                    for try await row in try await connection.query(select, logger: logger) {
                        total += try row.decode(RawJSONB.self).bytes.readableBytes
                    }
                    blackHole(total)
                },
                {
                    // Ours row by row through PostgresNIO's `row.decode` with Phylactery's decoder in
                    // the context (the tape comes from the decoder's spares).
                    var count = 0
                    for try await row in try await connection.query(select, logger: logger) {
                        count += try row.decode(ExecutionHistory.self, context: .init(jsonDecoder: decoder)).steps.count
                    }
                    blackHole(count)
                },
            ])
            // Where ours spends the loop: waiting in `next()` for a row to arrive, or decoding (inside
            // `next()` too, after the row is there). Mostly decoding means the consumer is the bottleneck,
            // not PostgresNIO's backpressure.
            var waiting = Duration.zero
            var decoding = Duration.zero
            var rowIterator = try await connection.query(select, logger: logger).makeAsyncIterator()
            while true {
                let start = ContinuousClock.now
                guard let row = try await rowIterator.next() else { break }
                let arrived = ContinuousClock.now
                blackHole(try row.decode(ExecutionHistory.self, context: .init(jsonDecoder: decoder)))
                waiting += arrived - start
                decoding += ContinuousClock.now - arrived
            }
            let consumerShare = decoding / (waiting + decoding)
            // What ours read must be the document.
            let check = try await connection.query("SELECT doc FROM public.bench_documents LIMIT 1", logger: logger).collect().first!
            let decoded = try check.decode(ExecutionHistory.self, context: .init(jsonDecoder: decoder))
            precondition(decoded == document)
            return (measured, consumerShare)
        }
        let (measured, consumerShare) = (outcome.0, outcome.1)
        let (oursRate, defaultRate, rawRate, rowDecodeRate) = (measured.rates[0], measured.rates[1], measured.rates[2], measured.rates[3])
        let (versusDefault, versusRaw) = (measured.ratios[1], measured.ratios[2])
        line("\nSelect \(rows) × \(label) documents into Codable types (MB/s; ratios are medians of per-round ratios)")
        line(String(format: "ours (decodeJSON rows) %.1f   ours (row.decode + context) %.1f   PostgresNIO default %.1f   raw bytes bound %.1f",
                    oursRate, rowDecodeRate, defaultRate, rawRate))
        line(String(format: "ours/default %.2fx   ours/raw %.0f%%   (row.decode + context: /raw %.0f%%)",
                    versusDefault, 100 * versusRaw, 100 * versusRaw / measured.ratios[3]))
        line(String(format: "one pass of the loop: %.0f%% of it decoding, the rest waiting for the next row", 100 * consumerShare))
        results["read_mbps_ours_rowdecode_\(label)"] = rowDecodeRate
        results["read_consumer_busy_share_\(label)"] = consumerShare
        results["read_mbps_ours_\(label)"] = oursRate
        results["read_mbps_default_\(label)"] = defaultRate
        results["read_mbps_raw_\(label)"] = rawRate
        results["read_vs_default_\(label)"] = versusDefault
        results["read_vs_raw_\(label)"] = versusRaw
    }

    // MARK: Peak memory

    /// Peak RSS growth while inserting one 16 MB document, relative to its size: first through the
    /// COPY stream, then as a bound parameter of an INSERT (the order keeps the cleaner baseline for
    /// the streaming path; both are reported).
    mutating func peakMemory(_ document: ExecutionHistory) async throws {
        let bytes = try ours.encodeToBuffer(document).readableBytes
        let logger = self.logger
        let ours = self.ours
        try await client.withConnection { connection in
            try await self.recreateTable(connection)
        }
        func measure(_ insert: () async throws -> Void) async throws -> (growth: Int, baseline: Int, reset: Bool) {
            let baseline = Measure.residentBytes()
            let reset = Measure.resetPeak()
            try await insert()
            return (max(0, Measure.peakResidentBytes() - baseline), baseline, reset)
        }
        let copy = try await measure {
            _ = try await client.transaction { tx in
                try await tx.copy(into: "bench_documents", columns: ["id", "doc"], encoder: ours) { rows in
                    rows.field(0)
                    try rows.field(json: document)
                    try await rows.endRow()
                }
            }
        }
        let insert = try await measure {
            try await client.withConnection { connection in
                let query = try Self.insertStatement(rows: 1, firstID: 1) { try $0.append(JSONB(document, encoder: ours)) }
                _ = try await connection.query(query, logger: logger).collect()
            }
        }
        let note = copy.reset && insert.reset ? "" : " (peak could not be reset: upper bounds)"
        line(String(format: "\nPeak RSS while inserting one %.1f MB document (baseline %.1f MB)%@:", Double(bytes) / 1e6, Double(copy.baseline) / 1e6, note))
        line(String(format: "  as a bound INSERT parameter: +%.1f MB = %.2f × the document", Double(insert.growth) / 1e6, Double(insert.growth) / Double(bytes)))
        line(String(format: "  through the COPY stream:     +%.1f MB = %.2f × the document", Double(copy.growth) / 1e6, Double(copy.growth) / Double(bytes)))
        results["peak_rss_ratio_16m"] = Double(insert.growth) / Double(bytes)
        results["peak_rss_growth_bytes_16m"] = Double(insert.growth)
        results["peak_rss_ratio_copy_16m"] = Double(copy.growth) / Double(bytes)
    }
}
