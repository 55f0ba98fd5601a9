import Foundation
import QGEMM

/// A `.npy` file named by a command-line option. Every error reading or
/// converting it names the option, the path and what the option needs, so
/// `--w u8.npy` answers "--w u8.npy: expected int8 data, got uint8; --w needs
/// int8 [N,K]" rather than a bare "expected int8 data".
struct NPYOption {
    let option: String
    let path: String
    /// What the option takes, e.g. "int8 [N,K]".
    let needs: String

    /// Reads the file.
    func read() throws -> NPYArray {
        try naming { try NPYArray(contentsOf: URL(fileURLWithPath: path)) }
    }

    /// Runs `body` (a check or conversion of this file's contents); a
    /// `QGEMMError` from it is re-raised with the option, path and need.
    func naming<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as QGEMMError {
            throw QGEMMError(error.code, "\(option) \(path): \(error.message); \(option) needs \(needs)")
        }
    }

    /// Reads X [M,K] (this option) and W [N,K] with the same K (`weights`),
    /// each error naming the option of the file at fault.
    func readWithWeights(_ weights: NPYOption) throws -> (x: NPYArray, w: NPYArray, m: Int, k: Int, n: Int) {
        let xa = try read(), wa = try weights.read()
        let xs = try naming { try xa.requireRank(2, name: "X") }
        let ws = try weights.naming {
            let ws = try wa.requireRank(2, name: "W")
            guard ws[1] == xs[1] else { throw QGEMMError(.invalidShape, "W is \(ws) but X is \(xs)") }
            guard ws[0] >= 1, ws[1] >= 1 else { throw QGEMMError(.invalidShape, "W is \(ws); a layer needs N ≥ 1 and K ≥ 1") }
            return ws
        }
        try Self.checkFits(rows: xs[0], columns: ws[0], what: "the output Y")
        return (xa, wa, xs[0], xs[1], ws[0])
    }

    /// Refuses a Float matrix (4 bytes a value, the widest output) of more
    /// than half of the memory this process may use (its cgroup's limit
    /// where that is lower than the machine's), whose allocation would end
    /// the process: two small files can describe a huge product.
    static func checkFits(rows: Int, columns: Int, what: String) throws {
        let (count, o1) = rows.multipliedReportingOverflow(by: columns)
        let (bytes, o2) = count.multipliedReportingOverflow(by: 4)
        let memory = CPUFeatures.usableMemoryBytes()
        guard !o1, !o2, UInt64(bytes) <= memory / 2 else {
            throw QGEMMError(.invalidShape, "\(what) would be \(rows)×\(columns) values, more than half of the \(memory >> 20) MiB this process may use")
        }
    }
}
