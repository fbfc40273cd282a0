import Foundation
import NIOCore
@testable import Phylactery
import PhylacteryTestSupport
import Testing

/// A `@JSONBCodable` model of the codec tests' random trees: every shape the generated code unrolls
/// (optionals, arrays, string-keyed dictionaries, nested generated types, recursion) and leaves of
/// every special-cased kind, plus values the generated code hands to `Codable` (an enum, the random
/// `JSONValue` tree, an `Int`-keyed dictionary).
@JSONBCodable
struct FastTree: Codable, Equatable {
    enum Kind: String, Codable { case root, branch, leaf }

    @JSONBCodable
    struct Leaf: Codable, Equatable {
        var label: String
        var weight: Double
        var ratio: Float
        var when: Date
        var id: UUID
        var note: String?
        var count: Int?
        var flags: [Bool]
        var small: Int8
        var medium: Int32
        var big: UInt64
        var wide: Int64
        var bytes: Data
    }

    var name: String
    var kind: Kind
    var payload: JSONValue
    var leaves: [Leaf]
    var children: [FastTree]
    var byName: [String: Leaf]
    var maybe: [Double?]
    var optionalLeaf: Leaf?
    var matrix: [[Double]]
    var tagsByKey: [String: [String]]
    var byNumber: [Int: String]
    var link: URL?
    var amount: Decimal
    var nested: Optional<Optional<Int>>
    var counts: Dictionary<String, Int?>

    static func random(_ rng: inout SeededRandom, depth: Int = 0) -> FastTree {
        func maybe<T>(_ make: (inout SeededRandom) -> T) -> T? { Bool.random(using: &rng) ? make(&rng) : nil }
        func leaf(_ rng: inout SeededRandom) -> Leaf {
            Leaf(
                label: JSONGenerator.string(&rng),
                weight: JSONGenerator.number(&rng),
                ratio: Float(Int.random(in: -1000...1000, using: &rng)) / 8,
                when: Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000_000...4_000_000_000_000, using: &rng)) / 1000),
                id: UUID(uuid: (UInt8.random(in: 0...255, using: &rng), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, UInt8.random(in: 0...255, using: &rng))),
                note: Bool.random(using: &rng) ? JSONGenerator.string(&rng) : nil,
                count: Bool.random(using: &rng) ? Int.random(in: Int.min...Int.max, using: &rng) : nil,
                flags: (0..<Int.random(in: 0...4, using: &rng)).map { _ in Bool.random(using: &rng) },
                small: Int8.random(in: .min ... .max, using: &rng),
                medium: Int32.random(in: .min ... .max, using: &rng),
                big: [UInt64.max, 0, UInt64.random(in: 0 ... .max, using: &rng)].randomElement(using: &rng)!,
                wide: [Int64.min, Int64.max, Int64.random(in: .min ... .max, using: &rng)].randomElement(using: &rng)!,
                bytes: Data((0..<Int.random(in: 0...7, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        }
        var tree = FastTree(
            name: JSONGenerator.string(&rng),
            kind: depth == 0 ? .root : (Bool.random(using: &rng) ? .branch : .leaf),
            payload: JSONGenerator.value(&rng, depth: 3),
            leaves: (0..<Int.random(in: 0...3, using: &rng)).map { _ in leaf(&rng) },
            children: [],
            byName: [:],
            maybe: (0..<Int.random(in: 0...4, using: &rng)).map { _ in Bool.random(using: &rng) ? JSONGenerator.number(&rng) : nil },
            optionalLeaf: nil,
            matrix: (0..<Int.random(in: 0...3, using: &rng)).map { _ in (0..<Int.random(in: 0...3, using: &rng)).map { _ in JSONGenerator.number(&rng) } },
            tagsByKey: [:],
            byNumber: [Int.random(in: -5...5, using: &rng): JSONGenerator.string(&rng), 100: "hundred"],
            link: nil,
            amount: Decimal(Int.random(in: -100_000...100_000, using: &rng)) / 100,
            nested: [.none, .some(.some(Int.random(in: -9...9, using: &rng)))].randomElement(using: &rng)!,
            counts: ["a": nil, "r" + JSONGenerator.string(&rng): Int.random(in: 0...9, using: &rng)])
        tree.optionalLeaf = maybe { leaf(&$0) }
        tree.link = maybe { rng in URL(string: "https://example.com/\(Int.random(in: 0...999, using: &rng))?q=a%20b")! }
        for _ in 0..<Int.random(in: 0...3, using: &rng) { tree.byName[JSONGenerator.string(&rng)] = leaf(&rng) }
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            tree.tagsByKey[JSONGenerator.string(&rng)] = (0..<Int.random(in: 0...3, using: &rng)).map { _ in JSONGenerator.string(&rng) }
        }
        if depth < 3 {
            tree.children = (0..<Int.random(in: 0...2, using: &rng)).map { _ in random(&rng, depth: depth + 1) }
        }
        return tree
    }
}

/// Custom keys (one needing escapes), a property left out of `CodingKeys`, a `let` with a value.
@JSONBCodable
struct RenamedFields: Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case title = "t"
        case body
        case quoted = "say \"hi\"\\now"
        case version
    }
    var title: String
    var body: String?
    var quoted: Int
    var cache: [String] = []
    let version: Int = 3
}

/// Hand-written `encode(to:)`: the macro leaves encoding to it and generates decoding only.
@JSONBCodable
struct HandEncoded: Codable, Equatable {
    var value: Int
    enum CodingKeys: String, CodingKey { case value }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value * 2, forKey: .value)
    }
}

/// A `Codable` type holding generated ones: its containers hand the nested values to the fast path.
struct CodableHolder: Codable, Equatable {
    var first: FastTree.Leaf
    var list: [FastTree.Leaf]
    var map: [String: RenamedFields]
}

/// Optionals the macro cannot see as such: it reads syntax, and a type alias hides the `?`.
/// Synthesized `Codable` knows the type, so it omits them when nil and reads a missing key as nil.
typealias MaybeCount = Int?
typealias MaybeKind = FastTree.Kind?
typealias MaybeLeaf = FastTree.Leaf?

@JSONBCodable
struct AliasedOptionals: Codable, Equatable {
    var count: MaybeCount
    var kind: MaybeKind
    var leaf: MaybeLeaf
    var label: String
}

/// Hand conformances that write and read something `Codable` would not, so the tests see which
/// path the coders took.
struct PathProbe: Codable, Equatable, JSONBFastCodable {
    var marker: String
    init(marker: String) { self.marker = marker }
    func encodeJSONB(to writer: JSONBWriter) throws {
        writer.beginObject()
        var first = true
        writer.member("\"marker\":", first: &first)
        try writer.write("fast")
        writer.endObject()
    }
    init(jsonb reader: JSONBReader, at value: Int) throws {
        var object = try reader.object(at: value)
        let text = try reader.decode(String.self, at: try reader.require("marker", in: &object))
        self.marker = "fast-read:" + text
    }
}

@Suite struct JSONBFastPathTests {
    /// Every encoder configuration: date and data strategies, NUL handling.
    static func encoders() -> [JSONBEncoder] {
        var result: [JSONBEncoder] = []
        for date in [JSONBEncoder.DateEncodingStrategy.iso8601WithFractionalSeconds, .iso8601, .secondsSince1970, .millisecondsSince1970, .deferredToDate] {
            for data in [JSONBEncoder.DataEncodingStrategy.base64, .deferredToData] {
                for nul in [JSONBEncoder.NulCharacterStrategy.refuse, .replace] {
                    var encoder = JSONBEncoder()
                    encoder.dateEncodingStrategy = date
                    encoder.dataEncodingStrategy = data
                    encoder.nulCharacterStrategy = nul
                    result.append(encoder)
                }
            }
        }
        return result
    }

    /// The decoder matching an encoder's strategies.
    static func decoder(for encoder: JSONBEncoder, generated: Bool) -> JSONBDecoder {
        var decoder = JSONBDecoder()
        decoder.dateDecodingStrategy = switch encoder.dateEncodingStrategy {
        case .iso8601WithFractionalSeconds, .iso8601: .iso8601
        case .secondsSince1970: .secondsSince1970
        case .millisecondsSince1970: .millisecondsSince1970
        case .deferredToDate: .deferredToDate
        }
        decoder.dataDecodingStrategy = encoder.dataEncodingStrategy == .base64 ? .base64 : .deferredToData
        decoder.usesGeneratedCoding = generated
        return decoder
    }

    static func codable(_ encoder: JSONBEncoder) -> JSONBEncoder {
        var encoder = encoder
        encoder.usesGeneratedCoding = false
        return encoder
    }

    @Test func fastAndCodablePathsWriteIdenticalBytesForRandomTrees() throws {
        var rng = SeededRandom(seed: 0xFA57)
        let trees = (0..<60).map { _ in FastTree.random(&rng) }
        for encoder in Self.encoders() {
            let codable = Self.codable(encoder)
            for (round, tree) in trees.enumerated() {
                let fast = try encoder.encodeToBytes(tree)
                let slow = try codable.encodeToBytes(tree)
                #expect(fast == slow, "round \(round), \(encoder.dateEncodingStrategy), \(encoder.dataEncodingStrategy)")
                // The generated code alone (no retry through Codable) writes the same bytes.
                #expect(try encoder.encodeGeneratedOnly(tree) == slow, "round \(round): generated code alone")
                // COPY text: backslashes doubled the same way.
                var fastCopy = ByteBuffer()
                var slowCopy = ByteBuffer()
                try encoder.encodeCopyField(tree, into: &fastCopy)
                try codable.encodeCopyField(tree, into: &slowCopy)
                #expect(fastCopy == slowCopy, "round \(round): COPY text")
            }
        }
    }

    @Test func fastAndCodablePathsDecodeIdenticalValuesBothWays() throws {
        var rng = SeededRandom(seed: 0xDEC0DE)
        let trees = (0..<60).map { _ in FastTree.random(&rng) }
        for encoder in Self.encoders() where encoder.nulCharacterStrategy == .refuse {
            let fastDecoder = Self.decoder(for: encoder, generated: true)
            let codableDecoder = Self.decoder(for: encoder, generated: false)
            for (round, tree) in trees.enumerated() {
                let codableBytes = try Self.codable(encoder).encodeToBytes(tree)
                let fastBytes = try encoder.encodeToBytes(tree)
                let reference = try codableDecoder.decode(FastTree.self, from: codableBytes)
                #expect(try fastDecoder.decode(FastTree.self, from: codableBytes) == reference, "round \(round): fast decode of Codable bytes")
                #expect(try codableDecoder.decode(FastTree.self, from: fastBytes) == reference, "round \(round): Codable decode of fast bytes")
                #expect(try fastDecoder.decodeGeneratedOnly(FastTree.self, from: codableBytes) == reference, "round \(round): generated code alone")
                if case .deferredToDate = encoder.dateEncodingStrategy {
                    // Dates as Doubles round-trip exactly: the decoded value is the original.
                    #expect(reference == tree, "round \(round): round trip")
                }
            }
        }
    }

    @Test func shuffledKeysAndUnknownMembersDecodeTheSame() throws {
        var rng = SeededRandom(seed: 0x5FF1E)
        let encoder = JSONBEncoder()
        let fastDecoder = Self.decoder(for: encoder, generated: true)
        let codableDecoder = Self.decoder(for: encoder, generated: false)
        for round in 0..<80 {
            let tree = FastTree.random(&rng)
            let bytes = try encoder.encodeToBytes(tree)
            let shuffled = try Self.reshuffle(bytes, &rng)
            #expect(shuffled != bytes || bytes.count < 3)
            let reference = try codableDecoder.decode(FastTree.self, from: bytes)
            #expect(try codableDecoder.decode(FastTree.self, from: shuffled) == reference, "round \(round): Codable")
            #expect(try fastDecoder.decodeGeneratedOnly(FastTree.self, from: shuffled) == reference, "round \(round): generated code")
        }
    }

    @Test func missingAndNullOptionalsAreNil() throws {
        let decoder = JSONBDecoder()
        let text = #"{"label":"x","weight":1,"ratio":0.5,"when":"2026-01-01T00:00:00Z","id":"E621E1F8-C36C-495A-93FC-0C247A3E6E5F","note":null,"flags":[],"small":1,"medium":2,"big":3,"wide":4,"bytes":""}"#
        let leaf = try decoder.decodeGeneratedOnly(FastTree.Leaf.self, from: Array(text.utf8))
        #expect(leaf.note == nil && leaf.count == nil)
        #expect(try JSONBDecoder.codableOnly.decode(FastTree.Leaf.self, from: Array(text.utf8)) == leaf)
    }

    @Test func optionalsBehindTypeAliasesAreOmittedWhenNilAndReadBackAsNil() throws {
        let values = [
            AliasedOptionals(count: nil, kind: nil, leaf: nil, label: "a"),
            AliasedOptionals(count: 7, kind: .leaf, leaf: Self.someLeaf, label: "b"),
            AliasedOptionals(count: 0, kind: nil, leaf: nil, label: "c"),
        ]
        for value in values {
            let fast = try JSONBEncoder().encodeGeneratedOnly(value)
            #expect(fast == (try Self.codable(JSONBEncoder()).encodeToBytes(value)))
            #expect(try JSONBDecoder().decodeGeneratedOnly(AliasedOptionals.self, from: fast) == value)
        }
        let empty = try JSONBEncoder().encodeGeneratedOnly(values[0])
        #expect(String(decoding: empty, as: UTF8.self) == #"{"label":"a"}"#)
        let nulls = Array(#"{"count":null,"kind":null,"leaf":null,"label":"d"}"#.utf8)
        #expect(try JSONBDecoder().decodeGeneratedOnly(AliasedOptionals.self, from: nulls) == AliasedOptionals(count: nil, kind: nil, leaf: nil, label: "d"))
        #expect(try JSONBDecoder.codableOnly.decode(AliasedOptionals.self, from: nulls) == AliasedOptionals(count: nil, kind: nil, leaf: nil, label: "d"))
    }

    @Test func badInputThrowsTheSameErrorsWithTheSamePaths() throws {
        let encoder = JSONBEncoder()
        var rng = SeededRandom(seed: 0xBAD)
        var tree = FastTree.random(&rng)
        tree.children = [FastTree.random(&rng, depth: 2)]
        tree.children[0].leaves = [FastTree.random(&rng).optionalLeaf ?? Self.someLeaf]
        let text = String(decoding: try encoder.encodeToBytes(tree), as: UTF8.self)
        let label = #""label":"#
        let firstLabel = text.range(of: label, range: text.range(of: #""children":"#)!.upperBound..<text.endIndex)!
        let mutations: [(String, String)] = [
            ("a leaf label becomes a number", text.replacingCharacters(in: firstLabel, with: #""label":7,"_was":"#)),
            ("the root name is missing", text.replacingOccurrences(of: #"{"name":"#, with: #"{"_name":"#, options: .anchored)),
            ("the root name is null", text.replacingOccurrences(of: #"{"name":"#, with: #"{"name":null,"_name":"#, options: .anchored)),
            ("the kind is not a case", text.replacingOccurrences(of: #""kind":"root""#, with: #""kind":"trunk""#)),
            ("the root is an array", "[" + text + "]"),
            ("a nested leaf id is not a UUID", text.replacingCharacters(in: text.range(of: #""id":""#, range: firstLabel.upperBound..<text.endIndex)!, with: #""id":"x"#)),
        ]
        for (what, bad) in mutations {
            let bytes = Array(bad.utf8)
            let fast = Self.describe { _ = try JSONBDecoder().decode(FastTree.self, from: bytes) }
            let codable = Self.describe { _ = try JSONBDecoder.codableOnly.decode(FastTree.self, from: bytes) }
            #expect(fast != nil, "\(what): no error")
            #expect(fast == codable, "\(what)")
        }
    }

    @Test func encodingErrorsAreTheCodablePathsAndNothingIsWritten() throws {
        var tree = FastTree.random(&Self.rng)
        tree.leaves = [Self.someLeaf, Self.someLeaf]
        tree.leaves[1].weight = .nan
        var buffer = ByteBuffer(string: "keep")
        let fast = Self.describe { try JSONBEncoder().encode(tree, into: &buffer) }
        #expect(String(buffer: buffer) == "keep")
        let codable = Self.describe { _ = try Self.codable(JSONBEncoder()).encodeToBytes(tree) }
        #expect(fast != nil)
        #expect(fast == codable)
        #expect(fast?.contains("leaves/Index 1/weight") == true, "\(fast ?? "")")
    }

    @Test func customKeysAndHandWrittenCodingAreRespected() throws {
        let value = RenamedFields(title: "a", body: nil, quoted: 5, cache: ["dropped"])
        let fast = try JSONBEncoder().encodeToBytes(value)
        #expect(fast == (try Self.codable(JSONBEncoder()).encodeToBytes(value)))
        #expect(String(decoding: fast, as: UTF8.self) == #"{"t":"a","say \"hi\"\\now":5,"version":3}"#)
        let back = try JSONBDecoder().decodeGeneratedOnly(RenamedFields.self, from: Array(#"{"version":9,"say \"hi\"\\now":5,"t":"a","body":"b"}"#.utf8))
        #expect(back == RenamedFields(title: "a", body: "b", quoted: 5))
        // Encoding stays the hand-written one; decoding is generated.
        let hand = HandEncoded(value: 4)
        #expect(String(decoding: try JSONBEncoder().encodeToBytes(hand), as: UTF8.self) == #"{"value":8}"#)
        #expect(!(HandEncoded.self is any JSONBFastEncodable.Type))
        // `T??` set to `.some(nil)`: written as null by both paths (decoded back as nil by both).
        var tree = FastTree.random(&Self.rng)
        tree.nested = .some(.none)
        let treeBytes = try JSONBEncoder().encodeToBytes(tree)
        #expect(treeBytes == (try Self.codable(JSONBEncoder()).encodeToBytes(tree)))
        #expect(String(decoding: treeBytes, as: UTF8.self).contains(#""nested":null"#))
        #expect(try JSONBDecoder().decodeGeneratedOnly(FastTree.self, from: treeBytes).nested == .none)
        #expect(try JSONBDecoder().decodeGeneratedOnly(HandEncoded.self, from: Array(#"{"value":8}"#.utf8)) == HandEncoded(value: 8))
    }

    @Test func codableTypesHoldingFastTypesUseTheFastPathForThem() throws {
        var rng = SeededRandom(seed: 0x401D)
        let holder = CodableHolder(
            first: FastTree.random(&rng).leaves.first ?? Self.someLeaf, list: [Self.someLeaf, Self.someLeaf],
            map: ["k": RenamedFields(title: "x", body: "y", quoted: 1)])
        let holderFast = String(decoding: try JSONBEncoder().encodeToBytes(holder), as: UTF8.self)
        let holderCodable = String(decoding: try Self.codable(JSONBEncoder()).encodeToBytes(holder), as: UTF8.self)
        #expect(holderFast == holderCodable)
        let bytes = try JSONBEncoder().encodeToBytes(holder)
        #expect(try JSONBDecoder().decode(CodableHolder.self, from: bytes) == (try JSONBDecoder.codableOnly.decode(CodableHolder.self, from: bytes)))

        // Which path ran: the probe writes "fast" and reads with a prefix only through its fast code.
        let probe = PathProbe(marker: "codable")
        struct Wrapper: Codable { var one: PathProbe; var many: [PathProbe]; var byKey: [String: PathProbe] }
        let wrapper = Wrapper(one: probe, many: [probe], byKey: ["k": probe])
        let fastText = String(decoding: try JSONBEncoder().encodeToBytes(wrapper), as: UTF8.self)
        #expect(fastText == #"{"one":{"marker":"fast"},"many":[{"marker":"fast"}],"byKey":{"k":{"marker":"fast"}}}"#)
        let codableText = String(decoding: try Self.codable(JSONBEncoder()).encodeToBytes(wrapper), as: UTF8.self)
        #expect(codableText == #"{"one":{"marker":"codable"},"many":[{"marker":"codable"}],"byKey":{"k":{"marker":"codable"}}}"#)
        let read = try JSONBDecoder().decode(Wrapper.self, from: Array(codableText.utf8))
        #expect(read.one.marker == "fast-read:codable" && read.many[0].marker == "fast-read:codable" && read.byKey["k"]?.marker == "fast-read:codable")
        #expect(try JSONBDecoder.codableOnly.decode(Wrapper.self, from: Array(codableText.utf8)).one.marker == "codable")
    }

    // MARK: Helpers

    nonisolated(unsafe) static var rng = SeededRandom(seed: 0xE770)

    static let someLeaf = FastTree.Leaf(
        label: "l", weight: 1.5, ratio: 0.25, when: Date(timeIntervalSince1970: 0), id: UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F")!,
        note: nil, count: 3, flags: [true], small: 1, medium: 2, big: 3, wide: 4, bytes: Data([1]))

    /// The error `body` throws, described with its kind and coding path (`nil` when it throws none).
    static func describe(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as DecodingError {
            switch error {
            case .typeMismatch(let type, let context): return "typeMismatch \(type) at \(path(context.codingPath)): \(context.debugDescription)"
            case .valueNotFound(let type, let context): return "valueNotFound \(type) at \(path(context.codingPath)): \(context.debugDescription)"
            case .keyNotFound(let key, let context): return "keyNotFound \(key.stringValue) at \(path(context.codingPath))"
            case .dataCorrupted(let context): return "dataCorrupted at \(path(context.codingPath)): \(context.debugDescription)"
            @unknown default: return "\(error)"
            }
        } catch let error as EncodingError {
            switch error {
            case .invalidValue(_, let context): return "invalidValue at \(path(context.codingPath)): \(context.debugDescription)"
            @unknown default: return "\(error)"
            }
        } catch {
            return "\(type(of: error)): \(error)"
        }
    }

    static func path(_ keys: [any CodingKey]) -> String { keys.map(\.stringValue).joined(separator: "/") }

    /// The same document with every object's members in a random order and an unknown member added
    /// to each object of the structs; values' text is copied as it was.
    static func reshuffle(_ bytes: [UInt8], _ rng: inout SeededRandom) throws -> [UInt8] {
        try bytes.withUnsafeBytes { raw in
            let tape = try JSONTape.parse(raw, maximumDepth: 512).entries
            var output: [UInt8] = []
            func text(_ entry: JSONTape.Entry, quoted: Bool) -> ArraySlice<UInt8> {
                let start = Int(entry.start) - (quoted ? 1 : 0)
                return bytes[start..<(Int(entry.start + entry.length) + (quoted ? 1 : 0))]
            }
            func write(_ index: Int) {
                let entry = tape[index]
                switch entry.kind {
                case .null: output += Array("null".utf8)
                case .true: output += Array("true".utf8)
                case .false: output += Array("false".utf8)
                case .number: output += text(entry, quoted: false)
                case .string: output += text(entry, quoted: true)
                case .array:
                    output.append(UInt8(ascii: "["))
                    var element = index + 1
                    for position in 0..<Int(entry.length) {
                        if position > 0 { output.append(UInt8(ascii: ",")) }
                        write(element)
                        element = Int(tape[element].end)
                    }
                    output.append(UInt8(ascii: "]"))
                case .object:
                    var members: [[UInt8]] = []
                    var names: Set<String> = []
                    var key = index + 1
                    for _ in 0..<Int(entry.length) {
                        names.insert(String(decoding: text(tape[key], quoted: false), as: UTF8.self))
                        let saved = output
                        output = Array(text(tape[key], quoted: true)) + [UInt8(ascii: ":")]
                        write(key + 1)
                        members.append(output)
                        output = saved
                        key = Int(tape[key + 1].end)
                    }
                    members.shuffle(using: &rng)
                    // Unknown members only in the structs' objects: in a dictionary or a JSONValue they would be data.
                    if names.isSuperset(of: ["label", "weight"]) || names.isSuperset(of: ["name", "kind"]) {
                        members.insert(Array(#""zz_unknown":{"a":[1,"b",null]}"#.utf8), at: Int.random(in: 0...members.count, using: &rng))
                    }
                    output.append(UInt8(ascii: "{"))
                    output += Array(members.joined(separator: [UInt8(ascii: ",")]))
                    output.append(UInt8(ascii: "}"))
                }
            }
            write(0)
            return output
        }
    }
}

extension JSONBDecoder {
    static var codableOnly: JSONBDecoder {
        var decoder = JSONBDecoder()
        decoder.usesGeneratedCoding = false
        return decoder
    }
}
