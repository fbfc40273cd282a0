#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one rule for U+0000 (NUL) in text headed for PostgreSQL.
///
/// PostgreSQL stores neither a NUL character in `text` (SQLSTATE 22021) nor the escape `\u0000` in
/// `jsonb` (22P05). So:
/// - a value that belongs to the user (a model's column, job arguments and results, a fact's value,
///   a memory's content, a COPY field, a document given to the codec) that holds U+0000 is refused
///   before anything is sent, with a ``PhylacteryError`` (``PhylacteryError/Code/unstorableValue``)
///   or an `EncodingError` that names the column or the coding path;
/// - text the library writes on its own (a handler's error message, span names, attributes and
///   events, worker names) has every U+0000 replaced by U+FFFD, so it can never fail a write.
package enum StorableText {
    /// The character NUL is replaced with in library-owned text.
    package static let replacement: Character = "\u{FFFD}"

    /// Whether `text` holds U+0000.
    @inline(__always)
    package static func containsNul(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
            return memchr(base, 0, bytes.count) != nil
        }
    }

    /// `text` with every U+0000 replaced by U+FFFD: for text the library writes on its own.
    @inline(__always)
    package static func sanitized(_ text: String) -> String {
        guard containsNul(text) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 }))
    }

    /// Refuses a user's `text` that holds U+0000, naming `what` (a column, a field) in the error.
    package static func check(_ text: String, _ what: @autoclosure () -> String, file: String = #fileID, line: Int = #line) throws(PhylacteryError) {
        guard containsNul(text) else { return }
        throw PhylacteryError.unstorableNul(in: what(), file: file, line: line)
    }
}

extension PhylacteryError {
    /// The error for a user's value holding U+0000, naming where it is and the fix.
    package static func unstorableNul(in what: String, file: String = #fileID, line: Int = #line) -> PhylacteryError {
        PhylacteryError(
            .unstorableValue,
            "\(what) contains the character U+0000 (NUL), which PostgreSQL cannot store in text or jsonb; nothing was sent. Remove it, or store such bytes as Data (bytea)",
            file: file, line: line)
    }
}
