import ArgumentParser
import Foundation
import QGEMM

// Argument spellings shared by every subcommand, so that `--kernel` and
// `--threads` are parsed, checked and explained the same way everywhere.

/// `--kernel NAME`: checked at parse time against the paths this CPU can run;
/// a bad name is answered with the list of valid ones.
extension KernelPath: ExpressibleByArgument {
    public init?(argument: String) {
        guard let path = KernelPath(rawValue: argument.lowercased()), path.isSupported else { return nil }
        self = path
    }

    public static var allValueStrings: [String] { KernelPath.available.map(\.rawValue) }
}

/// `--threads N` (and `--jobs N`): a whole number in 1...1024 everywhere;
/// `qgemm bench` also takes a comma-separated list of them. Options using it
/// parse unconditionally, so `--threads -1` is read as a value and refused
/// with the range instead of "missing value".
enum ThreadCount {
    static let range = 1...1024

    static func parse(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let count = Int(trimmed) else {
            throw ValidationError("a thread count is a whole number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        guard range.contains(count) else {
            throw ValidationError("a thread count must be in \(range.lowerBound)...\(range.upperBound), got \(count)")
        }
        return count
    }

    static func parseList(_ text: String) throws -> [Int] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { try parse(String($0)) }
    }
}

/// Range checks that name the option, for values the parser reads as given
/// (negative numbers included) and the command then checks.
enum OptionCheck {
    /// A scale: finite and > 0.
    static func scale(_ value: Float?, _ option: String) throws {
        if let value, !(value.isFinite && value > 0) {
            throw ValidationError("\(option) must be finite and > 0, got \(value)")
        }
    }

    /// An option that means nothing in the chosen mode is refused, not ignored.
    static func unused(_ given: Bool, _ option: String, _ why: String) throws {
        if given { throw ValidationError("\(option) \(why)") }
    }
}

/// `--clamp LO,HI` (either may be negative), with the reason when it is refused.
struct ClampArgument {
    let range: ClosedRange<Int32>

    static func parse(_ text: String) throws -> ClampArgument {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { throw ValidationError("the clamp is two integers LO,HI, got '\(text)'") }
        guard let lo = Int32(parts[0]), let hi = Int32(parts[1]) else {
            throw ValidationError("the clamp bounds must be integers in the output's range, got '\(text)'")
        }
        guard lo <= hi else { throw ValidationError("the clamp bounds are reversed: LO \(lo) > HI \(hi); write \(hi),\(lo)") }
        return ClampArgument(range: lo...hi)
    }
}

/// A file named by an output option (`--json`, `--csv`, `--out`, `--save`):
/// checked before the work starts, so that a long run does not end in
/// "cannot write". `-` (standard output) passes.
enum OutputPath {
    static func check(_ path: String, option: String) throws {
        guard path != "-" else { return }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ValidationError("\(option) \(path): the folder \(folder) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw ValidationError("\(option) \(path): the folder \(folder) is not writable")
        }
    }
}
