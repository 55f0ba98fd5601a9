import Foundation

/// Structure-aware edits of a `.npy` file: the header, a Python dict literal,
/// is split into its entries and edited as such (keys dropped, misspelt,
/// requoted or duplicated; `descr`, `fortran_order` and `shape` set to other
/// dtypes, flags and tuples, or to what belongs to another key), the version
/// and header framing are varied, and half of the time the data is resized to
/// what the new shape needs, so that the edit reaches the typed reads.
public enum NPYMutator {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    static let descrs = ["'|i1'", "'|u1'", "'<i4'", "'<i8'", "'<f2'", "'<f4'", "'<f8'", "'>f4'", "'>i1'", "'=f4'", "'<c8'",
                         "'<u4'", "'|b1'", "'<U3'", "'O'", "'f4'", "'<f4 '", "\"<f4\"", "''", "'<i'", "'<f16'"]
    static let interesting = [
        "True", "False", "0", "1", "None", "''", "()", "(0,)", "(1,)", "(-1,)", "(2, 3)", "(3,)", "(1, 1, 1, 1)", "[2, 3]",
        "(4294967296, 4294967296)", "(9223372036854775807,)", "(99999999999999999999,)", "(2, -3)", "(1.5,)", "(,)",
        "('a',)", "nan", "1e400", "{}", "'True'", "(2,3,)", "( 2 , 3 )", "(0x10,)",
    ]
    static let keys = ["'descr'", "'fortran_order'", "'shape'", "\"descr\"", "\"shape\"", "descr", "'shape '", "'extra'"]

    struct Parsed {
        var major: UInt8, minor: UInt8
        var entries: [(key: String, value: String)]
        var data: [UInt8]
    }

    /// Splits `{k: v, k: v, }` at its top-level commas and colons; nil for
    /// anything else.
    static func entries(of header: String) -> [(key: String, value: String)]? {
        let text = header.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{"), text.hasSuffix("}") else { return nil }
        let body = Array(text.dropFirst().dropLast())
        var parts: [String] = [], current = "", depth = 0, quote: Character? = nil
        for c in body {
            if let q = quote {
                current.append(c)
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "'", "\"": quote = c; current.append(c)
            case "(", "[", "{": depth += 1; current.append(c)
            case ")", "]", "}": depth -= 1; current.append(c)
            case "," where depth == 0: parts.append(current); current = ""
            default: current.append(c)
            }
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { parts.append(current) }
        var out: [(String, String)] = []
        for p in parts {
            guard let colon = p.firstIndex(of: ":") else { return nil }
            out.append((p[..<colon].trimmingCharacters(in: .whitespaces), p[p.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    static func parse(_ bytes: [UInt8]) -> Parsed? {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { return nil }
        let major = bytes[6], minor = bytes[7]
        let start = major == 1 ? 10 : 12
        guard bytes.count >= start else { return nil }
        let length = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
                                : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard length <= bytes.count - start, let header = String(bytes: bytes[start..<(start + length)], encoding: .utf8),
              let entries = entries(of: header) else { return nil }
        return Parsed(major: major, minor: minor, entries: entries, data: Array(bytes[(start + length)...]))
    }

    static func itemSize(_ descr: String) -> Int? {
        let d = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        guard d.count == 3, let n = Int(String(d.suffix(1))) else { return nil }
        return n
    }

    static func dims(_ shape: String) -> [Int]? {
        let t = shape.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("("), t.hasSuffix(")") else { return nil }
        let inner = t.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let values = inner.compactMap { Int($0) }
        return values.count == inner.count ? values : nil
    }

    static func tuple(_ dims: [Int]) -> String { dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")" }

    public static func mutate(_ bytes: [UInt8], maxSize: Int, _ rng: inout FuzzRandom) -> [UInt8]? {
        guard var file = parse(bytes) else { return nil }
        for _ in 0...rng.below(3) { edit(&file, &rng) }
        if rng.oneIn(2),
           let descr = file.entries.first(where: { $0.key == "'descr'" }), let item = itemSize(descr.value),
           let shape = file.entries.first(where: { $0.key == "'shape'" }), let d = dims(shape.value), d.allSatisfy({ $0 >= 0 }) {
            var count = 1
            for v in d { count = count.multipliedReportingOverflow(by: v).overflow ? Int.max : count * v }
            if count <= 1 << 16 {
                let size = count * item
                file.data = Array(file.data.prefix(size)) + [UInt8](repeating: 0, count: max(0, size - file.data.count))
            }
        }
        var header = "{" + file.entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + (rng.oneIn(4) ? "}" : ", }")
        var headerBytes = Array(header.utf8)
        let prefix = file.major == 1 ? 10 : 12
        if !rng.oneIn(8) {
            header += String(repeating: " ", count: (64 - (prefix + headerBytes.count + 1) % 64) % 64) + "\n"
            headerBytes = Array(header.utf8)
        }
        var length = headerBytes.count
        if rng.oneIn(16) { length += rng.pick([-1, 1, -8, 64]) }
        guard length >= 0 else { return nil }
        var out = magic + [file.major, file.minor]
        if file.major == 1 {
            guard length <= 0xFFFF else { return nil }
            out += [UInt8(length & 0xFF), UInt8(length >> 8)]
        } else {
            out += withUnsafeBytes(of: UInt32(truncatingIfNeeded: length).littleEndian, Array.init)
        }
        out += headerBytes + file.data
        return out.count <= maxSize ? out : nil
    }

    static func edit(_ file: inout Parsed, _ rng: inout FuzzRandom) {
        let n = file.entries.count
        switch rng.below(9) {
        case 0 where n > 0: file.entries.remove(at: rng.below(n))
        case 1 where n > 0: file.entries[rng.below(n)].key = rng.pick(keys)
        case 2 where n > 0:
            let e = file.entries[rng.below(n)]
            file.entries.insert(rng.oneIn(2) ? e : (e.key, rng.pick(interesting)), at: rng.below(n + 1))
        case 3 where n > 0: file.entries[rng.below(n)].value = rng.oneIn(2) ? rng.pick(interesting) : file.entries[rng.below(n)].value
        case 4:
            if let i = file.entries.firstIndex(where: { $0.key == "'descr'" }) { file.entries[i].value = rng.pick(descrs) }
        case 5:
            if let i = file.entries.firstIndex(where: { $0.key == "'shape'" }) {
                var d = dims(file.entries[i].value) ?? []
                switch rng.below(4) {
                case 0 where !d.isEmpty:
                    let j = rng.below(d.count)
                    d[j] = rng.pick([d[j] &+ 1, d[j] &- 1, d[j] &* 2, 0, 0 &- d[j], 1 << 32, Int.max])
                case 1: d.append(rng.pick([1, 2, 0]))
                case 2 where !d.isEmpty: d.removeLast()
                default: d.reverse()
                }
                file.entries[i].value = tuple(d)
            }
        case 6:
            if let i = file.entries.firstIndex(where: { $0.key == "'fortran_order'" }) {
                file.entries[i].value = rng.pick(["True", "False", "0", "1", "'False'", "false", "None"])
            }
        case 7: (file.major, file.minor) = (rng.pick([1, 2, 3, 4, 0]), rng.oneIn(4) ? 1 : 0)
        default:
            if n > 0 {
                let i = rng.below(n)
                var v = Array(file.entries[i].value)
                if !v.isEmpty { v.insert(rng.pick(Array("é\u{0} ,:'\"()")), at: rng.below(v.count + 1)) }
                file.entries[i].value = String(v)
            }
        }
    }
}
