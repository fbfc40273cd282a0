import struct Foundation.UUID
import NIOCore
import Tracing

/// Turns finished spans into rows of `COPY traces.spans FROM STDIN` (text format), writing straight
/// into the outgoing buffer: ids as hex, numbers as digits, and the jsonb columns as JSON whose
/// backslashes are already doubled for COPY, so nothing is escaped twice or copied in between.
enum SpanEncoding {
    /// The columns a row fills, in order (`created_at`/`updated_at` take their defaults).
    static let columns = [
        "id", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_us", "end_us", "duration_us",
        "status", "status_message", "attributes", "events", "links", "service", "remote_parent",
    ]

    /// Writes one row's fields, tab-separated, without the ending newline (``CopyRowWriter/endRow()`` adds it).
    static func write(_ span: FinishedSpan, service: String, into buffer: inout ByteBuffer) {
        let start = span.startMicroseconds, end = span.endMicroseconds
        let tab = UInt8(ascii: "\t")
        writeUUID(SpanRecord.rowID(startMicroseconds: start, spanID: span.spanID), into: &buffer)
        buffer.writeInteger(tab)
        writeHex(span.traceID.high, into: &buffer)
        writeHex(span.traceID.low, into: &buffer)
        buffer.writeInteger(tab)
        writeDecimal(span.spanID.storedValue, into: &buffer)
        buffer.writeInteger(tab)
        if let parent = span.parentID { writeDecimal(parent.storedValue, into: &buffer) } else { buffer.writeStaticString("\\N") }
        buffer.writeInteger(tab)
        CopyText.escape(span.name.utf8, into: &buffer)
        buffer.writeInteger(tab)
        buffer.writeString(kindName(span.kind))
        buffer.writeInteger(tab)
        writeDecimal(start, into: &buffer)
        buffer.writeInteger(tab)
        writeDecimal(end, into: &buffer)
        buffer.writeInteger(tab)
        writeDecimal(end - start, into: &buffer)
        buffer.writeInteger(tab)
        let (status, message) = statusColumns(span)
        buffer.writeString(status.rawValue)
        buffer.writeInteger(tab)
        if let message { CopyText.escape(message.utf8, into: &buffer) } else { buffer.writeStaticString("\\N") }
        buffer.writeInteger(tab)
        // Swapped in and out, not copied: a copy would duplicate the whole outgoing chunk.
        var json = CopyJSON(buffer: ByteBuffer())
        swap(&json.buffer, &buffer)
        json.attributes(span.attributes)
        json.byte(tab)
        json.events(span.events)
        json.byte(tab)
        json.links(span.links)
        swap(&json.buffer, &buffer)
        buffer.writeInteger(tab)
        CopyText.escape(service.utf8, into: &buffer)
        buffer.writeInteger(tab)
        buffer.writeInteger(span.hasRemoteParent ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }

    static func kindName(_ kind: SpanKind) -> String {
        switch kind {
        case .server: return SpanRecord.Kind.server.rawValue
        case .client: return SpanRecord.Kind.client.rawValue
        case .producer: return SpanRecord.Kind.producer.rawValue
        case .consumer: return SpanRecord.Kind.consumer.rawValue
        case .internal: return SpanRecord.Kind.internal.rawValue
        }
    }

    /// The status and its message; an error status without a message takes the last recorded error's.
    static func statusColumns(_ span: FinishedSpan) -> (SpanRecord.Status, String?) {
        guard let status = span.status else { return (.unset, nil) }
        switch status.code {
        case .ok: return (.ok, nil)
        case .error:
            if let message = status.message { return (.error, message) }
            for event in span.events.reversed() where event.name == "exception" {
                if case .string(let message)? = event.attributes.get("exception.message") { return (.error, message) }
            }
            return (.error, nil)
        }
    }

    static func writeUUID(_ uuid: UUID, into buffer: inout ByteBuffer) {
        withUnsafeBytes(of: uuid.uuid) { bytes in
            for byte in bytes {
                buffer.writeInteger(Hex.digits[Int(byte >> 4)])
                buffer.writeInteger(Hex.digits[Int(byte & 0xF)])
            }
        }
    }

    static func writeHex(_ value: UInt64, into buffer: inout ByteBuffer) {
        for i in 0..<16 { buffer.writeInteger(Hex.digits[Int((value >> UInt64(60 - 4 * i)) & 0xF)]) }
    }

    /// A signed decimal without allocating.
    static func writeDecimal(_ value: Int64, into buffer: inout ByteBuffer) {
        var magnitude = value.magnitude
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }
}

/// JSON written for a COPY text field: every backslash JSON emits is doubled (COPY's escape), and
/// JSON never emits raw tabs or newlines, so the output needs no second pass.
struct CopyJSON {
    var buffer: ByteBuffer

    mutating func byte(_ byte: UInt8) { self.buffer.writeInteger(byte) }

    mutating func string(_ text: String) {
        self.byte(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.buffer.writeStaticString("\\\\\"")
            case UInt8(ascii: "\\"): self.buffer.writeStaticString("\\\\\\\\")
            case 0x0A: self.buffer.writeStaticString("\\\\n")
            case 0x0D: self.buffer.writeStaticString("\\\\r")
            case 0x09: self.buffer.writeStaticString("\\\\t")
            case 0x00: self.buffer.writeStaticString("\u{FFFD}")  // jsonb cannot hold \u0000 (StorableText)
            case 0..<0x20:
                self.buffer.writeStaticString("\\\\u00")
                self.byte(Hex.digits[Int(byte >> 4)])
                self.byte(Hex.digits[Int(byte & 0xF)])
            default: self.byte(byte)
            }
        }
        self.byte(UInt8(ascii: "\""))
    }

    mutating func number(_ value: Int64) { SpanEncoding.writeDecimal(value, into: &self.buffer) }

    mutating func number(_ value: Double) {
        if value.isFinite { self.buffer.writeString(String(value)) } else { self.buffer.writeStaticString("null") }
    }

    mutating func bool(_ value: Bool) { value ? self.buffer.writeStaticString("true") : self.buffer.writeStaticString("false") }

    mutating func array<Element>(_ values: [Element], _ write: (inout CopyJSON, Element) -> Void) {
        self.byte(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { self.byte(UInt8(ascii: ",")) }
            write(&self, value)
        }
        self.byte(UInt8(ascii: "]"))
    }

    mutating func value(_ attribute: SpanAttribute) {
        switch attribute {
        case .int32(let v): self.number(Int64(v))
        case .int64(let v): self.number(v)
        case .double(let v): self.number(v)
        case .bool(let v): self.bool(v)
        case .string(let v): self.string(v)
        case .int32Array(let v): self.array(v) { $0.number(Int64($1)) }
        case .int64Array(let v): self.array(v) { $0.number($1) }
        case .doubleArray(let v): self.array(v) { $0.number($1) }
        case .boolArray(let v): self.array(v) { $0.bool($1) }
        case .stringArray(let v): self.array(v) { $0.string($1) }
        case .stringConvertible(let v): self.string(String(describing: v))
        case .stringConvertibleArray(let v): self.array(v) { $0.string(String(describing: $1)) }
        default: self.string(String(describing: attribute))
        }
    }

    mutating func attributes(_ attributes: SpanAttributes) {
        self.byte(UInt8(ascii: "{"))
        var first = true
        attributes.forEach { key, value in
            if !first { self.byte(UInt8(ascii: ",")) }
            first = false
            self.string(key)
            self.byte(UInt8(ascii: ":"))
            self.value(value)
        }
        self.byte(UInt8(ascii: "}"))
    }

    mutating func events(_ events: [SpanEvent]) {
        self.array(events) { json, event in
            json.buffer.writeStaticString("{\"name\":")
            json.string(event.name)
            json.buffer.writeStaticString(",\"time_us\":")
            json.number(Int64(truncatingIfNeeded: event.nanosecondsSinceEpoch / 1000))
            json.buffer.writeStaticString(",\"attributes\":")
            json.attributes(event.attributes)
            json.byte(UInt8(ascii: "}"))
        }
    }

    mutating func links(_ links: [SpanLink]) {
        self.array(links.compactMap { link in link.context.spanContext.map { ($0, link.attributes) } }) { json, link in
            json.buffer.writeStaticString("{\"trace_id\":")
            json.string(link.0.traceID.description)
            json.buffer.writeStaticString(",\"span_id\":")
            json.string(link.0.spanID.description)
            json.buffer.writeStaticString(",\"attributes\":")
            json.attributes(link.1)
            json.byte(UInt8(ascii: "}"))
        }
    }
}

extension CopyRowWriter {
    /// Appends one span as a whole row of `traces.spans`.
    mutating func span(_ span: FinishedSpan, service: String) async throws {
        SpanEncoding.write(span, service: service, into: &self.buffer)
        try await self.endRow()
    }
}
