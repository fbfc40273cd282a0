import SwiftSyntaxMacrosGenericTestSupport
import Testing

/// `@JSONBCodable`'s expansions (`assertExpansion` is ModelMacroExpansionTests.swift's).
@Suite struct JSONBCodableMacroExpansionTests {
    @Test func scalarsOptionalsAndCollections() {
        assertExpansion(
            """
            @JSONBCodable
            public struct Run: Codable {
                public var id: UUID
                var note: String?
                var steps: [Step]
                var scores: [String: [Double?]]
                var status: Status
                static var count = 0
                var computed: Int { 1 }
            }
            """,
            expandedSource: """
            public struct Run: Codable {
                public var id: UUID
                var note: String?
                var steps: [Step]
                var scores: [String: [Double?]]
                var status: Status
                static var count = 0
                var computed: Int { 1 }

                typealias _JSONBValue_id = UUID

                typealias _JSONBValue_note = String

                typealias _JSONBValue_steps = Step

                typealias _JSONBValue_scores = Double

                typealias _JSONBValue_status = Status
            }

            extension Run: JSONBFastEncodable {
                public func encodeJSONB(to writer: JSONBWriter) throws {
                    writer.beginObject()
                    var first = true
                    writer.member(#""id":"#, first: &first)
                    try writer.write(self.id)
                    if let value = self.note {
                        writer.member(#""note":"#, first: &first)
                        try writer.write(value)
                    }
                    writer.member(#""steps":"#, first: &first)
                    try writer.writeArray(self.steps) { writer, value in
                        try writer.write(value)
                    }
                    writer.member(#""scores":"#, first: &first)
                    try writer.writeDictionary(self.scores) { writer, value in
                        try writer.writeArray(value) { writer, value in
                            try writer.writeOptional(value) { writer, value in
                                try writer.write(value)
                            }
                        }
                    }
                    if writer.isPresent(self.status) {
                        writer.member(#""status":"#, first: &first)
                        try writer.write(self.status)
                    }
                    writer.endObject()
                }
            }

            extension Run: JSONBFastDecodable {
                public init(jsonb reader: JSONBReader, at value: Int) throws {
                    var object = try reader.object(at: value)
                    self.id = try reader.decode(_JSONBValue_id.self, at: try reader.require("id", in: &object))
                    if let member = reader.find("note", in: &object), !reader.isNull(member) {
                        self.note = .some(try reader.decode(_JSONBValue_note.self, at: member))
                    } else {
                        self.note = nil
                    }
                    self.steps = try reader.decodeArray(at: try reader.require("steps", in: &object)) { reader, value in
                        try reader.decode(_JSONBValue_steps.self, at: value)
                    }
                    self.scores = try reader.decodeDictionary(at: try reader.require("scores", in: &object)) { reader, value in
                        try reader.decodeArray(at: value) { reader, value in
                            try reader.decodeOptional(at: value) { reader, value in
                                try reader.decode(_JSONBValue_scores.self, at: value)
                            }
                        }
                    }
                    self.status = try reader.decodeMember(_JSONBValue_status.self, "status", in: &object)
                }
            }
            """
        )
    }

    @Test func codingKeysLetsAndHandWrittenCoding() {
        assertExpansion(
            """
            @JSONBCodable
            struct Renamed: Codable {
                enum CodingKeys: String, CodingKey {
                    case title = "t"
                    case quoted = "say \\"hi\\""
                    case version
                }
                var title: String
                var quoted: Int
                var cache: [Int] = []
                let version: Int = 3
                func encode(to encoder: any Encoder) throws {}
            }
            """,
            expandedSource: """
            struct Renamed: Codable {
                enum CodingKeys: String, CodingKey {
                    case title = "t"
                    case quoted = "say \\"hi\\""
                    case version
                }
                var title: String
                var quoted: Int
                var cache: [Int] = []
                let version: Int = 3
                func encode(to encoder: any Encoder) throws {}

                typealias _JSONBValue_title = String

                typealias _JSONBValue_quoted = Int
            }

            extension Renamed: JSONBFastDecodable {
                init(jsonb reader: JSONBReader, at value: Int) throws {
                    var object = try reader.object(at: value)
                    self.title = try reader.decode(_JSONBValue_title.self, at: try reader.require("t", in: &object))
                    self.quoted = try reader.decode(_JSONBValue_quoted.self, at: try reader.require(#"say "hi""#, in: &object))
                }
            }
            """
        )
    }

    @Test func nonCodableAndUnreadablePropertiesAreRefused() {
        assertExpansion(
            """
            @JSONBCodable
            struct Bad: Codable {
                var callback: () -> Void
                var pair: (Int, String)
                var anything: any Sendable
                var kind: Any.Type
                var count = 0
                lazy var cached: Int = 1
                var (x, y): (Int, Int)
            }
            """,
            expandedSource: """
            struct Bad: Codable {
                var callback: () -> Void
                var pair: (Int, String)
                var anything: any Sendable
                var kind: Any.Type
                var count = 0
                lazy var cached: Int = 1
                var (x, y): (Int, Int)
            }
            """,
            diagnostics: [
                DiagnosticSpec(message: "@JSONBCodable needs an explicit type for 'count'", line: 7, column: 9),
                DiagnosticSpec(message: "@JSONBCodable cannot code lazy property 'cached'; make it a stored or computed property", line: 8, column: 14),
                DiagnosticSpec(message: "@JSONBCodable needs one name per stored property; declare the names of this pattern separately", line: 9, column: 9),
                DiagnosticSpec(message: "@JSONBCodable cannot code 'callback' of type '() -> Void': function types are not Codable", line: 3, column: 19),
                DiagnosticSpec(message: "@JSONBCodable cannot code 'pair' of type '(Int, String)': tuples are not Codable; use a struct", line: 4, column: 15),
                DiagnosticSpec(message: "@JSONBCodable cannot code 'anything' of type 'any Sendable': existential types (any P, Any) are not Codable; use a concrete Codable type or an enum", line: 5, column: 19),
                DiagnosticSpec(message: "@JSONBCodable cannot code 'kind' of type 'Any.Type': metatypes are not Codable", line: 6, column: 15),
            ]
        )
    }

    @Test func onlyStructs() {
        assertExpansion(
            """
            @JSONBCodable
            final class Note: Codable {
                var title = ""
            }
            """,
            expandedSource: """
            final class Note: Codable {
                var title = ""
            }
            """,
            diagnostics: [DiagnosticSpec(message: "@JSONBCodable can only be applied to a struct", line: 1, column: 1)]
        )
    }
}
