/// UTF-8 validation as a finite automaton whose whole transition function for one input byte fits
/// in one 64-bit word, so that a step is a table load and a shift (`state = transitions[byte] &>> state`).
///
/// Each state is a multiple of 6 below 64; bits `s ..< s + 6` of `transitions[byte]` hold the state
/// that follows state `s` on `byte`. A shift by the state brings the next state into the low six
/// bits, and `&>>` uses only those bits of the shift count, so the bits above them need no masking.
/// The error state is 0: every word's low six bits are 0, so once entered it is never left.
///
/// The accepted language is RFC 3629's: no overlong forms, no encoded surrogates (U+D800–DFFF),
/// nothing above U+10FFFF. Used by the JSON parser for strings with non-ASCII bytes
/// (``JSONTape/Parser/validateUTF8(_:from:to:)``); the parser walks a rejected string again to
/// report where it goes wrong.
enum UTF8Automaton {
    /// No complete character is pending: the text so far is valid and may end here.
    static let accept: UInt64 = State.accept.rawValue

    /// The transition words, one per byte value; built once, never freed, never written after.
    nonisolated(unsafe) static let transitions: UnsafePointer<UInt64> = {
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
        for byte in 0...255 {
            var word: UInt64 = 0
            for state in State.allCases {
                word |= State.after(state, UInt8(byte)).rawValue << state.rawValue
            }
            table[byte] = word
        }
        return UnsafePointer(table)
    }()

    /// The states (their values are the shifts); the names say what the next byte must be.
    enum State: UInt64, CaseIterable {
        case error = 0
        case accept = 6
        /// One continuation byte (80–BF) to go.
        case oneMore = 12
        case twoMore = 18
        case threeMore = 24
        /// After E0: A0–BF (no overlong three-byte form), then one more.
        case afterE0 = 30
        /// After ED: 80–9F (no surrogate), then one more.
        case afterED = 36
        /// After F0: 90–BF (no overlong four-byte form), then two more.
        case afterF0 = 42
        /// After F4: 80–8F (nothing above U+10FFFF), then two more.
        case afterF4 = 48

        static func after(_ state: State, _ byte: UInt8) -> State {
            let continuation = (0x80...0xBF).contains(byte)
            switch state {
            case .error: return .error
            case .accept:
                switch byte {
                case 0x00...0x7F: return .accept
                case 0xC2...0xDF: return .oneMore
                case 0xE0: return .afterE0
                case 0xE1...0xEC, 0xEE...0xEF: return .twoMore
                case 0xED: return .afterED
                case 0xF0: return .afterF0
                case 0xF1...0xF3: return .threeMore
                case 0xF4: return .afterF4
                default: return .error
                }
            case .oneMore: return continuation ? .accept : .error
            case .twoMore: return continuation ? .oneMore : .error
            case .threeMore: return continuation ? .twoMore : .error
            case .afterE0: return (0xA0...0xBF).contains(byte) ? .oneMore : .error
            case .afterED: return (0x80...0x9F).contains(byte) ? .oneMore : .error
            case .afterF0: return (0x90...0xBF).contains(byte) ? .twoMore : .error
            case .afterF4: return (0x80...0x8F).contains(byte) ? .twoMore : .error
            }
        }
    }
}
