import Foundation

/// Keyed container over one object of the tape.
struct JSONKeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONTapeDecoder
    let object: Int
    let codingPath: [any CodingKey]

    init(decoder: JSONTapeDecoder, object: Int, codingPath: [any CodingKey]) {
        self.decoder = decoder
        self.object = object
        self.codingPath = codingPath
    }

    var allKeys: [Key] {
        var keys: [Key] = []
        var index = object + 1
        let end = Int(decoder.tape[object].end)
        while index < end {
            if let key = Key(stringValue: (try? decoder.string(at: index)) ?? "") { keys.append(key) }
            index = Int(decoder.tape[index + 1].end)
        }
        return keys
    }

    /// The tape index of the value stored under `key`, or `nil`.
    func find(_ key: Key) -> Int? {
        var name = key.stringValue
        return name.withUTF8 { wanted -> Int? in
            let tape = decoder.tape
            let text = decoder.bytes.baseAddress!  // a document with an object is not empty
            let end = Int(tape[object].end)
            let count = Int(tape[object].length)
            guard count > 0 else { return nil }
            // Start after the previous match in this object (kept per nesting depth) and wrap around once.
            let depth = codingPath.count
            let hint = decoder.hint(depth: depth, object: object)
            var index = hint < end ? hint : object + 1
            for _ in 0..<count {
                let valueIndex = index + 1
                let nextKey = Int(tape[valueIndex].end)
                if tape[index].keyEquals(UnsafeRawBufferPointer(wanted), text: text) {
                    decoder.setHint(depth: depth, object: object, next: nextKey)
                    return valueIndex
                }
                index = nextKey >= end ? object + 1 : nextKey
            }
            return nil
        }
    }

    func require(_ key: Key) throws -> Int {
        guard let index = find(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return index
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        decoder.tape[try require(key)].kind == .null
    }

    /// Reads a scalar member. The key joins the coding path only if reading fails, so the common
    /// path copies no `CodingKey` existential.
    @inline(__always)
    func at<R>(_ key: Key, _ body: (Int) throws -> R) throws -> R {
        let index = try require(key)
        do {
            return try body(index)
        } catch let error as DecodingError {
            throw error.relocated(to: codingPath + [key])
        }
    }

    /// Reads a member that may itself be a container: the key is part of the path while it decodes.
    @inline(__always)
    func nested<R>(_ key: Key, _ body: (Int) throws -> R) throws -> R {
        let index = try require(key)
        return try decoder.withPending(key: key, containerPath: codingPath) { try body(index) }
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try at(key) { try decoder.bool(at: $0) } }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try at(key) { try decoder.string(at: $0) } }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try at(key) { try decoder.double(at: $0) } }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try at(key) { try decoder.float(at: $0) } }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try at(key) { try decoder.integer(type, at: $0) } }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try nested(key) { try decoder.decodeValue(type, at: $0) } }

    // Optional members: one lookup instead of contains + decodeNil + decode.
    @inline(__always)
    func present<R>(_ key: Key, _ body: (Int) throws -> R) throws -> R? {
        guard let index = find(key), decoder.tape[index].kind != .null else { return nil }
        do {
            return try body(index)
        } catch let error as DecodingError {
            throw error.relocated(to: codingPath + [key])
        }
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key) { try decoder.bool(at: $0) } }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key) { try decoder.string(at: $0) } }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key) { try decoder.double(at: $0) } }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key) { try decoder.integer(type, at: $0) } }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(key) { try decoder.integer(type, at: $0) } }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let index = find(key), decoder.tape[index].kind != .null else { return nil }
        return try decoder.withPending(key: key, containerPath: codingPath) { try decoder.decodeValue(type, at: index) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        let index = try require(key)
        guard decoder.tape[index].kind == .object else { throw decoder.mismatch([String: Any].self, at: index) }
        return KeyedDecodingContainer(JSONKeyedDecoder<NestedKey>(decoder: decoder, object: index, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let index = try require(key)
        guard decoder.tape[index].kind == .array else { throw decoder.mismatch([Any].self, at: index) }
        return JSONUnkeyedDecoder(decoder: decoder, array: index, codingPath: codingPath + [key])
    }

    func superDecoder() throws -> any Decoder {
        try JSONSlotDecoder(decoder: decoder, index: find(Key(stringValue: "super")!) ?? -1, codingPath: codingPath + [JSONKey.super])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONSlotDecoder(decoder: decoder, index: find(key) ?? -1, codingPath: codingPath + [key])
    }
}

/// Unkeyed container over one array of the tape.
struct JSONUnkeyedDecoder: UnkeyedDecodingContainer {
    let decoder: JSONTapeDecoder
    let array: Int
    let codingPath: [any CodingKey]
    var count: Int? { Int(decoder.tape[array].length) }
    var currentIndex = 0
    /// Tape index of the next element.
    var position: Int

    init(decoder: JSONTapeDecoder, array: Int, codingPath: [any CodingKey]) {
        self.decoder = decoder
        self.array = array
        self.codingPath = codingPath
        self.position = array + 1
    }

    var isAtEnd: Bool { currentIndex >= Int(decoder.tape[array].length) }

    mutating func next<R>(_ type: Any.Type, _ body: (JSONTapeDecoder, Int) throws -> R) throws -> R {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [JSONKey(index: currentIndex)], debugDescription: "Unkeyed container is at end."))
        }
        let decoder = self.decoder
        let position = self.position
        let value = try decoder.withPending(index: currentIndex, containerPath: codingPath) { try body(decoder, position) }
        self.position = Int(decoder.tape[position].end)
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if decoder.tape[position].kind == .null {
            position += 1
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type) { try $0.bool(at: $1) } }
    mutating func decode(_ type: String.Type) throws -> String { try next(type) { try $0.string(at: $1) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type) { try $0.double(at: $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type) { try $0.float(at: $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type) { try $0.integer(type, at: $1) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type) { try $0.decodeValue(type, at: $1) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let path = codingPath + [JSONKey(index: currentIndex)]
        return try next(type) { decoder, index in
            guard decoder.tape[index].kind == .object else { throw decoder.mismatch([String: Any].self, at: index) }
            return KeyedDecodingContainer(JSONKeyedDecoder<NestedKey>(decoder: decoder, object: index, codingPath: path))
        }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let path = codingPath + [JSONKey(index: currentIndex)]
        return try next([Any].self) { decoder, index in
            guard decoder.tape[index].kind == .array else { throw decoder.mismatch([Any].self, at: index) }
            return JSONUnkeyedDecoder(decoder: decoder, array: index, codingPath: path)
        }
    }

    mutating func superDecoder() throws -> any Decoder {
        let path = codingPath + [JSONKey(index: currentIndex)]
        return try next(Any.self) { JSONSlotDecoder(decoder: $0, index: $1, codingPath: path) }
    }
}

/// Single-value container over one tape entry.
struct JSONSingleValueDecoder: SingleValueDecodingContainer {
    let decoder: JSONTapeDecoder
    let index: Int
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { decoder.tape[index].kind == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool(at: index) }
    func decode(_ type: String.Type) throws -> String { try decoder.string(at: index) }
    func decode(_ type: Double.Type) throws -> Double { try decoder.double(at: index) }
    func decode(_ type: Float.Type) throws -> Float { try decoder.float(at: index) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.integer(type, at: index) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.integer(type, at: index) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.integer(type, at: index) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.integer(type, at: index) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.integer(type, at: index) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.integer(type, at: index) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.integer(type, at: index) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.integer(type, at: index) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.integer(type, at: index) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.integer(type, at: index) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type, at: index) }
}

/// The decoder handed out by `superDecoder()`: the shared tape at one entry (or none, -1: null).
struct JSONSlotDecoder: Decoder {
    let decoder: JSONTapeDecoder
    let index: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard index >= 0, decoder.tape[index].kind == .object else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "Expected an object."))
        }
        return KeyedDecodingContainer(JSONKeyedDecoder<Key>(decoder: decoder, object: index, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard index >= 0, decoder.tape[index].kind == .array else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "Expected an array."))
        }
        return JSONUnkeyedDecoder(decoder: decoder, array: index, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        guard index >= 0 else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "No value."))
        }
        return JSONSingleValueDecoder(decoder: decoder, index: index, codingPath: codingPath)
    }
}

extension DecodingError {
    /// The same error with its coding path replaced (errors of scalar reads are made before the path is known).
    func relocated(to path: [any CodingKey]) -> DecodingError {
        switch self {
        case .typeMismatch(let type, let context):
            return .typeMismatch(type, .init(codingPath: path, debugDescription: context.debugDescription, underlyingError: context.underlyingError))
        case .valueNotFound(let type, let context):
            return .valueNotFound(type, .init(codingPath: path, debugDescription: context.debugDescription, underlyingError: context.underlyingError))
        case .dataCorrupted(let context):
            return .dataCorrupted(.init(codingPath: path, debugDescription: context.debugDescription, underlyingError: context.underlyingError))
        default:
            return self
        }
    }
}
