import ArgumentParser
import Foundation
import QGEMM

// Argument spellings shared by every subcommand, so that `--kernel` and
// `--threads` are parsed, checked and explained the same way everywhere.

/// `--kernel NAME`: checked at parse time against the paths this CPU can run
/// (the test-only ones are not among them, as for `QGEMM_KERNEL`); a bad
/// name is answered with the list of valid ones.
extension KernelPath: ExpressibleByArgument {
    public init?(argument: String) {
        guard let path = try? KernelPath.resolve(argument) else { return nil }
        self = path
    }

    public static var allValueStrings: [String] { KernelPath.available.map(\.rawValue) }
}

/// `validate`'s `--kernel` and `--inject-fault`: a path as `--kernel` reads
/// it, listed in the help without the reference, which is what `validate`
/// checks the paths against (named, it is refused there, saying so).
struct KernelPathToCheck: ExpressibleByArgument {
    let path: KernelPath

    init?(argument: String) {
        guard let path = KernelPath(argument: argument) else { return nil }
        self.path = path
    }

    static var allValueStrings: [String] { KernelPath.available.filter { $0 != .reference }.map(\.rawValue) }
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

/// The files a command's output options name (`--json`, `--csv`, `--out`,
/// `--save`), checked together before the work starts: so that a long run
/// does not end in "cannot write", and no option overwrites another's file.
/// `-` (standard output) passes for the report options, `--json` and
/// `--csv`; `--out` and `--save` write files. A pipe with no reader is refused
/// when written (RegularFile.save), not waited for.
enum OutputPath {
    static let standardOutputOptions: Set<String> = ["--json", "--csv"]

    /// Each output path must be writable, not a folder, and its own: no two
    /// outputs, and no output and input (`inputs`, files the command reads),
    /// name the same file, which one write would destroy for the other.
    static func check(_ outputs: KeyValuePairs<String, String?>, inputs: KeyValuePairs<String, String?> = [:]) throws {
        for case let (option, path?) in outputs where !OutputFile.isStandardOutput(path) {
            for case let (input, read?) in inputs where sameFile(path, read) {
                throw ValidationError("\(option) \(path) is the file \(input) reads; writing it would destroy the input, so name another")
            }
        }
        var seen: [(option: String, path: String, file: String)] = []
        for case let (option, path?) in outputs {
            try check(path, option: option)
            // Links resolved before ".." is taken away; /dev/stdout is standard output.
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
            let file = OutputFile.isStandardOutput(path) ? "-" : resolved
            // Hard links too, where both files exist already.
            if let other = seen.first(where: { $0.file == file || ($0.file != "-" && file != "-" && sameFile($0.path, path)) }) {
                throw ValidationError(file == "-" ? "\(other.option) \(other.path) and \(option) \(path) would both write to standard output; send one to a file"
                                                  : "\(other.option) and \(option) name the same file, \(path); give each its own")
            }
            seen.append((option, path, file))
        }
    }

    /// Whether two paths name one file: the same device and inode where both
    /// exist (links, hard links, "./x" and "x"), else the same resolved path.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        func resolved(_ p: String) -> String { URL(fileURLWithPath: p).resolvingSymlinksInPath().standardizedFileURL.path }
        return resolved(a) == resolved(b)
    }

    private static func check(_ path: String, option: String) throws {
        guard !path.isEmpty else { throw ValidationError("\(option): the path is empty") }
        if OutputFile.isStandardOutput(path) {
            guard standardOutputOptions.contains(option) else {
                throw ValidationError("\(option) \(path): \(option) writes a file, not standard output; name one")
            }
            return
        }
        // "x/" would otherwise be written as "x" (URL drops the slash).
        let last = URL(fileURLWithPath: path).lastPathComponent
        var isFolder: ObjCBool = false
        guard !path.hasSuffix("/"), last != ".", last != "..",
              !(FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue) else {
            throw ValidationError("\(option) \(path): a folder; name a file")
        }
        // An existing file (or device: /dev/null, /dev/stdout) must be writable itself; its folder need not be.
        if FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.isWritableFile(atPath: path) else { throw ValidationError("\(option) \(path): not writable") }
            return
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ValidationError("\(option) \(path): the folder \(folder) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw ValidationError("\(option) \(path): the folder \(folder) is not writable")
        }
    }
}
