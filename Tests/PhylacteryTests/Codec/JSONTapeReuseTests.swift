import Foundation
import NIOCore
@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// One tape storage serving document after document: what `decodeJSON` row loops and the decoder's
/// spares rely on. Nothing of one document may show in the next.
@Suite struct JSONTapeReuseTests {
    let encoder = JSONBEncoder()
    let decoder = JSONBDecoder()

    /// The entries a fresh parse gives, field by field.
    func fields(_ entries: some Collection<JSONTape.Entry>) -> [[UInt32]] {
        entries.map { [UInt32($0.kind.rawValue), $0.flag ? 1 : 0, $0.start, $0.length, $0.end] }
    }

    @Test func aReusedStorageParsesExactlyLikeAFreshOne() throws {
        var rng = SeededRandom(seed: 0x7A9E)
        let storage = JSONTape.Storage()
        // Large and small documents in turn: a small one after a large one must not keep its tail.
        for round in 0..<200 {
            let value = round % 5 == 0 ? .array((0..<40).map { _ in JSONGenerator.value(&rng) }) : JSONGenerator.value(&rng)
            let bytes = try encoder.encodeToBytes(value)
            try bytes.withUnsafeBytes { raw in
                let fresh = try JSONTape.parse(raw, maximumDepth: 512)
                try JSONTape.parse(raw, maximumDepth: 512, into: storage)
                #expect(fields(storage.entries) == fields(fresh.entries), "round \(round)")
            }
            #expect(try decoder.decode(JSONValue.self, fromBytes: bytes, tapeStorage: storage) == value, "round \(round)")
        }
    }

    @Test func aFailedParseLeavesTheStorageUsableForTheNextDocument() throws {
        let storage = JSONTape.Storage()
        let big = Array(#"{"a":[1,2,3,{"b":"c"}],"d":"e\n"}"#.utf8)
        #expect(try decoder.decode(JSONValue.self, fromBytes: big, tapeStorage: storage) == JSONValue.object(["a": .array([.number(1), .number(2), .number(3), .object(["b": .string("c")])]), "d": .string("e\n")]))
        let capacity = storage.capacity
        // Malformed halfway: the error is the parser's, with its offset.
        #expect(throws: JSONBError.self) {
            try decoder.decode(JSONValue.self, fromBytes: Array(#"{"a":[1,2,"#.utf8), tapeStorage: storage)
        }
        // Valid JSON of the wrong shape: a DecodingError, and the storage stays.
        #expect(throws: DecodingError.self) {
            try decoder.decode([String].self, fromBytes: Array("[1]".utf8), tapeStorage: storage)
        }
        #expect(storage.capacity >= capacity)
        #expect(try decoder.decode([String].self, fromBytes: Array(#"["x"]"#.utf8), tapeStorage: storage) == ["x"])
    }

    struct Row: Codable, Equatable, Sendable {
        var id: Int
        var name: String
        var values: [Double]
        var labels: [String: String]
    }

    @Test func theDecodersSparesServeConcurrentDecodes() async throws {
        // Documents of very different sizes, decoded many at a time.
        func row(_ position: Int, of index: Int) -> Row {
            let name = "row \(position) \"\(index)\""
            let values: [Double] = [Double(position) / 3, -1.5e10]
            return Row(id: position * index, name: name, values: values, labels: ["k\(position)": "v\(index)"])
        }
        let documents: [[Row]] = (0..<64).map { index in
            let count = index % 8 == 0 ? 500 : index % 5 + 1
            return (0..<count).map { row($0, of: index) }
        }
        let buffers = try documents.map { try encoder.encodeToBuffer($0) }
        let decoder = self.decoder
        // More decodes at once than spares are kept: each takes its own storage, none sees another's.
        try await withThrowingTaskGroup(of: (Int, [Row]).self) { group in
            for (index, buffer) in buffers.enumerated() {
                group.addTask { (index, try decoder.decode([Row].self, from: buffer)) }
            }
            for try await (index, decoded) in group {
                #expect(decoded == documents[index], "document \(index)")
            }
        }
        // A spare tape never outgrows the limit, and a huge document's tape is not kept.
        let huge = try ByteBuffer(bytes: encoder.encodeToBytes([Int](repeating: 7, count: JSONTape.Spares.largestKept + 1)))
        #expect(try decoder.decode([Int].self, from: huge).count == JSONTape.Spares.largestKept + 1)
        let next = JSONTape.Spares.take()
        #expect(next.count == 0)
        #expect(next.capacity <= JSONTape.Spares.largestKept)
    }
}

extension JSONBDecoder {
    /// Test shorthand: decodes `bytes` with a caller-kept tape storage.
    func decode<T: Decodable>(_ type: T.Type, fromBytes bytes: [UInt8], tapeStorage: JSONTape.Storage) throws -> T {
        try bytes.withUnsafeBytes { try self.decode(type, fromBytes: $0, tapeStorage: tapeStorage) }
    }
}
