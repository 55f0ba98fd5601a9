/// Edits a JSON document the way a damaged or hand-edited file differs from a
/// good one: keys dropped, misspelt, renamed to another key or duplicated;
/// values emptied, made huge, negative, fractional, non-numeric, NaN or
/// another key's value; arrays shortened, lengthened or emptied.
public struct JSONMutator {
    /// Keys and string values of the format, so that a rename lands on a name
    /// the reader knows and reaches the checks behind it.
    public var vocabulary: [String]

    public init(vocabulary: [String]) { self.vocabulary = vocabulary }

    static let interestingBare = [
        "0", "-1", "1", "2", "3", "7", "8", "127", "128", "255", "256", "-128", "-129",
        "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808",
        "18446744073709551616", "1e400", "-1e400", "1.5", "-0", "0.0", "1e-45", "3.4028235e38",
        "NaN", "Infinity", "-Infinity", "nan", "true", "false", "null", "\"\"", "[]", "{}", "[[]]",
    ]
    static let interestingStrings = [
        "", " ", "0", "-1", "1", "-0", "nan", "NaN", "inf", "-inf", "1e40", "1e-50", "0x10", "2147483648",
        "-2147483649", "340282366920938463463374607431768211456", "1.0", "１", "\u{0}", "é", String(repeating: "9", count: 400),
    ]

    /// Every node's path: child indices from the root.
    static func paths(_ node: JSONText, _ prefix: [Int] = []) -> [[Int]] {
        var out = [prefix]
        switch node {
        case .object(let entries): for (i, e) in entries.enumerated() { out += paths(e.value, prefix + [i]) }
        case .array(let items): for (i, v) in items.enumerated() { out += paths(v, prefix + [i]) }
        default: break
        }
        return out
    }

    static func node(_ root: JSONText, at path: [Int]) -> JSONText {
        guard let first = path.first else { return root }
        switch root {
        case .object(let entries): return node(entries[first].value, at: Array(path.dropFirst()))
        case .array(let items): return node(items[first], at: Array(path.dropFirst()))
        default: return root
        }
    }

    static func replacing(_ root: JSONText, at path: [Int], with new: JSONText) -> JSONText {
        guard let first = path.first else { return new }
        switch root {
        case .object(var entries):
            entries[first].value = replacing(entries[first].value, at: Array(path.dropFirst()), with: new)
            return .object(entries)
        case .array(var items):
            items[first] = replacing(items[first], at: Array(path.dropFirst()), with: new)
            return .array(items)
        default: return root
        }
    }

    /// One edit somewhere in `root`.
    public func mutate(_ root: JSONText, _ rng: inout FuzzRandom) -> JSONText {
        let all = Self.paths(root)
        let path = rng.pick(all)
        return Self.replacing(root, at: path, with: mutateNode(Self.node(root, at: path), root: root, all: all, &rng))
    }

    func misspelt(_ key: String, _ rng: inout FuzzRandom) -> String {
        var chars = Array(key)
        switch rng.below(5) {
        case 0 where !chars.isEmpty: chars.remove(at: rng.below(chars.count))
        case 1: chars.insert(rng.pick(Array("_xA0 ")), at: rng.below(chars.count + 1))
        case 2 where chars.count >= 2:
            let i = rng.below(chars.count - 1)
            chars.swapAt(i, i + 1)
        case 3: return key.uppercased()
        default: return key + "_"
        }
        return String(chars)
    }

    func newKey(_ old: String, _ rng: inout FuzzRandom) -> String {
        rng.oneIn(2) || vocabulary.isEmpty ? misspelt(old, &rng) : rng.pick(vocabulary)
    }

    func interestingValue(root: JSONText, all: [[Int]], _ rng: inout FuzzRandom) -> JSONText {
        switch rng.below(4) {
        case 0: .bare(rng.pick(Self.interestingBare))
        case 1: .string(rng.pick(Self.interestingStrings))
        case 2: vocabulary.isEmpty ? .string("") : .string(rng.pick(vocabulary))
        default: Self.node(root, at: rng.pick(all)) // another key's value
        }
    }

    func mutateNode(_ node: JSONText, root: JSONText, all: [[Int]], _ rng: inout FuzzRandom) -> JSONText {
        switch node {
        case .object(var entries) where !entries.isEmpty && !rng.oneIn(4):
            let i = rng.below(entries.count)
            switch rng.below(5) {
            case 0: entries.remove(at: i)
            case 1: entries[i].key = newKey(entries[i].key, &rng)
            case 2: entries.insert((entries[i].key, rng.oneIn(2) ? entries[i].value : interestingValue(root: root, all: all, &rng)),
                                   at: rng.below(entries.count + 1))
            case 3: entries.append((vocabulary.isEmpty ? "x" : rng.pick(vocabulary), interestingValue(root: root, all: all, &rng)))
            default: entries.swapAt(i, rng.below(entries.count))
            }
            return .object(entries)
        case .array(var items) where !items.isEmpty && !rng.oneIn(4):
            let i = rng.below(items.count)
            switch rng.below(4) {
            case 0: items.remove(at: i)
            case 1: items.insert(items[i], at: rng.below(items.count + 1))
            case 2: items = []
            default: items[i] = interestingValue(root: root, all: all, &rng)
            }
            return .array(items)
        case .bare(let s) where rng.oneIn(2):
            guard let v = Int(s) else { return interestingValue(root: root, all: all, &rng) }
            let edits: [Int] = [v &+ 1, v &- 1, v &* 2, v / 2, 0 &- v, 0, v &+ 4, v &+ 8, v &- 4]
            return .bare(String(rng.pick(edits)))
        case .string(let s) where rng.oneIn(3):
            return .string(rng.oneIn(2) ? misspelt(s, &rng) : s + s)
        default:
            return interestingValue(root: root, all: all, &rng)
        }
    }
}
