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
