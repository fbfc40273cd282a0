import Foundation
import PhylacteryTestSupport

/// Any JSON value, for comparing documents semantically (numbers as Double, objects as dictionaries).
indirect enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

enum JSONGenerator {
    /// Strings heavy in escapes and non-ASCII: quotes, backslashes, controls, accents, CJK, emoji, surrogate-pair scalars.
    static let alphabet: [Character] = Array("ab cZ09\"\\/\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F}é漢字🦀👩‍👩‍👧𝄞\u{2028}\u{FEFF}")

    static func string(_ rng: inout SeededRandom) -> String {
        let length = Int.random(in: 0...24, using: &rng)
        return String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
    }

    static func number(_ rng: inout SeededRandom) -> Double {
        switch Int.random(in: 0..<8, using: &rng) {
        case 0: return Double(Int.random(in: -1000...1000, using: &rng))
        case 1: return Double.random(in: -1...1, using: &rng)
        case 2: return Double(Int64.random(in: -(1 << 53)...(1 << 53), using: &rng))
        case 3: return [Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude, Double.leastNonzeroMagnitude, Double.leastNormalMagnitude, 0.1, 1e-7, 5e-324, 1.7976931348623157e308].randomElement(using: &rng)!
        case 4: return Double(sign: .plus, exponent: Int.random(in: -1000...1000, using: &rng), significand: Double.random(in: 1..<2, using: &rng))
        default: return Double.random(in: -1e6...1e6, using: &rng)
        }
    }

    static func value(_ rng: inout SeededRandom, depth: Int = 0) -> JSONValue {
        let kind = depth > 5 ? Int.random(in: 0..<4, using: &rng) : Int.random(in: 0..<6, using: &rng)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(number(&rng))
        case 3: return .string(string(&rng))
        case 4: return .array((0..<Int.random(in: 0...6, using: &rng)).map { _ in value(&rng, depth: depth + 1) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &rng) { object[string(&rng)] = value(&rng, depth: depth + 1) }
            return .object(object)
        }
    }
}
