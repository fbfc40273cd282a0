import Foundation
import NIOCore

/// Keyed container of ``JSONStreamEncoder``: writes `,"key":value` into the object at `depth`.
struct JSONKeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONStreamEncoder
    let depth: Int
    let codingPath: [any CodingKey]

    @inline(__always)
    func begin(_ key: Key) {
        self.encoder.beginMember(depth: self.depth, key: key.stringValue)
    }

    mutating func encodeNil(forKey key: Key) throws { begin(key); encoder.writeNull(); encoder.slotPending = false }
    mutating func encode(_ value: Bool, forKey key: Key) throws { begin(key); encoder.writeBool(value); encoder.slotPending = false }
    mutating func encode(_ value: String, forKey key: Key) throws { begin(key); encoder.writeString(value); encoder.slotPending = false }
    mutating func encode(_ value: Double, forKey key: Key) throws { begin(key); try encoder.path(key) { try encoder.writeDouble(value) }; encoder.slotPending = false }
    mutating func encode(_ value: Float, forKey key: Key) throws { begin(key); try encoder.path(key) { try encoder.writeFloat(value) }; encoder.slotPending = false }
    mutating func encode(_ value: Int, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int8, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int16, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int32, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int64, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { begin(key); encoder.writeInteger(value); encoder.slotPending = false }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        begin(key)
        try encoder.path(key) { try encoder.encodeValue(value) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        begin(key)
        let depth = encoder.openFrame(isObject: true)
        return KeyedEncodingContainer(JSONKeyedEncoder<NestedKey>(encoder: encoder, depth: depth, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        begin(key)
        let depth = encoder.openFrame(isObject: false)
        return JSONUnkeyedEncoder(encoder: encoder, depth: depth, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        encoder.beginMember(depth: depth, key: "super")
        return JSONSlotEncoder(encoder: encoder, codingPath: codingPath + [JSONKey.super])
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        begin(key)
        return JSONSlotEncoder(encoder: encoder, codingPath: codingPath + [key])
    }
}

/// Unkeyed container of ``JSONStreamEncoder``: writes `,value` into the array at `depth`.
struct JSONUnkeyedEncoder: UnkeyedEncodingContainer {
    let encoder: JSONStreamEncoder
    let depth: Int
    let codingPath: [any CodingKey]
    var count: Int { encoder.frames.indices.contains(depth) ? encoder.frames[depth].count : 0 }

    @inline(__always)
    func begin() { self.encoder.beginElement(depth: self.depth) }

    mutating func encodeNil() throws { begin(); encoder.writeNull(); encoder.slotPending = false }
    mutating func encode(_ value: Bool) throws { begin(); encoder.writeBool(value); encoder.slotPending = false }
    mutating func encode(_ value: String) throws { begin(); encoder.writeString(value); encoder.slotPending = false }
    mutating func encode(_ value: Double) throws { begin(); try encoder.writeDouble(value); encoder.slotPending = false }
    mutating func encode(_ value: Float) throws { begin(); try encoder.writeFloat(value); encoder.slotPending = false }
    mutating func encode(_ value: Int) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int8) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int16) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int32) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int64) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt8) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt16) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt32) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt64) throws { begin(); encoder.writeInteger(value); encoder.slotPending = false }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let index = self.count
        begin()
        try encoder.path(JSONKey(index: index)) { try encoder.encodeValue(value) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let index = self.count
        begin()
        let depth = encoder.openFrame(isObject: true)
        return KeyedEncodingContainer(JSONKeyedEncoder<NestedKey>(encoder: encoder, depth: depth, codingPath: codingPath + [JSONKey(index: index)]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let index = self.count
        begin()
        let depth = encoder.openFrame(isObject: false)
        return JSONUnkeyedEncoder(encoder: encoder, depth: depth, codingPath: codingPath + [JSONKey(index: index)])
    }

    mutating func superEncoder() -> any Encoder {
        let index = self.count
        begin()
        return JSONSlotEncoder(encoder: encoder, codingPath: codingPath + [JSONKey(index: index)])
    }
}

/// Single-value container: writes one value into the pending slot.
struct JSONSingleValueEncoder: SingleValueEncodingContainer {
    let encoder: JSONStreamEncoder
    let codingPath: [any CodingKey]

    func check() throws {
        guard encoder.slotPending else {
            throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: "A single-value container was asked to encode a second value."))
        }
    }

    mutating func encodeNil() throws { try check(); encoder.writeNull(); encoder.slotPending = false }
    mutating func encode(_ value: Bool) throws { try check(); encoder.writeBool(value); encoder.slotPending = false }
    mutating func encode(_ value: String) throws { try check(); encoder.writeString(value); encoder.slotPending = false }
    mutating func encode(_ value: Double) throws { try check(); try encoder.writeDouble(value); encoder.slotPending = false }
    mutating func encode(_ value: Float) throws { try check(); try encoder.writeFloat(value); encoder.slotPending = false }
    mutating func encode(_ value: Int) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int8) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int16) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int32) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: Int64) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt8) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt16) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt32) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode(_ value: UInt64) throws { try check(); encoder.writeInteger(value); encoder.slotPending = false }
    mutating func encode<T: Encodable>(_ value: T) throws { try check(); try encoder.encodeValue(value) }
}

/// The encoder handed out by `superEncoder()`: the shared stream, with its own coding path.
struct JSONSlotEncoder: Encoder {
    let encoder: JSONStreamEncoder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let depth = encoder.openFrame(isObject: true)
        return KeyedEncodingContainer(JSONKeyedEncoder<Key>(encoder: encoder, depth: depth, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let depth = encoder.openFrame(isObject: false)
        return JSONUnkeyedEncoder(encoder: encoder, depth: depth, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONSingleValueEncoder(encoder: encoder, codingPath: codingPath)
    }
}

extension JSONStreamEncoder {
    /// Runs `body` with `key` appended to the coding path (for errors and custom `encode(to:)`).
    @inline(__always)
    func path<R>(_ key: any CodingKey, _ body: () throws -> R) rethrows -> R {
        self.codingPath.append(key)
        defer { self.codingPath.removeLast() }
        return try body()
    }
}
