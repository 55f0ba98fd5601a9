import Foundation

/// JSON as text, for mutation: objects keep their key order and may hold a key
/// twice, and a scalar keeps its source text, so that the mutators can write
/// what no JSON library would (duplicate keys, `NaN`, numbers past any type,
/// bare words) and still read back what they wrote.
public indirect enum JSONText: Equatable {
    case object([(key: String, value: JSONText)])
    case array([JSONText])
    case string(String)
    /// A number, `true`, `false`, `null`, or any other bare text, as written.
    case bare(String)

    public static func == (a: JSONText, b: JSONText) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.bare(x), .bare(y)): x == y
        default: false
        }
    }

    /// The value as an integer, when it is a bare integer literal.
    public var integer: Int? { if case .bare(let s) = self { Int(s) } else { nil } }

    public var text: String {
        switch self {
        case .object(let entries):
            "{" + entries.map { Self.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        case .array(let items): "[" + items.map(\.text).joined(separator: ",") + "]"
        case .string(let s): Self.quote(s)
        case .bare(let s): s
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where u.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Parses `bytes` (UTF-8 JSON, trailing spaces allowed); nil when it is not
    /// JSON this reader understands. Bare words are read as whatever runs up to
    /// the next delimiter, so a mutated `NaN` parses again.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONText? {
        var p = Parser(bytes: Array(bytes))
        guard let v = p.value(depth: 0) else { return nil }
        p.skipSpace()
        return p.i == p.bytes.count ? v : nil
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func value(depth: Int) -> JSONText? {
            guard depth < 64 else { return nil }
            skipSpace()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var entries: [(key: String, value: JSONText)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(entries) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value(depth: depth + 1) else { return nil }
                    entries.append((key, v))
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(entries) }
                    return nil
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [JSONText] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    guard let v = value(depth: depth + 1) else { return nil }
                    items.append(v)
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    return nil
                }
            case UInt8(ascii: "\""):
                return string().map(JSONText.string)
            default:
                let start = i
                while i < bytes.count, !Array(",:]} \t\r\n".utf8).contains(bytes[i]) { i += 1 }
                guard i > start, let s = String(bytes: bytes[start..<i], encoding: .utf8) else { return nil }
                return .bare(s)
            }
        }

        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                switch c {
                case UInt8(ascii: "\""): return String(bytes: out, encoding: .utf8)
                case UInt8(ascii: "\\"):
                    guard i < bytes.count else { return nil }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count, let s = String(bytes: bytes[i..<(i + 4)], encoding: .ascii),
                              let v = UInt32(s, radix: 16), let u = Unicode.Scalar(v) else { return nil }
                        i += 4
                        out += Array(String(Character(u)).utf8)
                    default: out.append(e)
                    }
                default: out.append(c)
                }
            }
            return nil
        }
    }
}
