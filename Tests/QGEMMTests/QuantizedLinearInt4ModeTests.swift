import Foundation
import Testing
@testable import QGEMM
import QGEMMBaseline

/// `QuantizedLinear` in `.int4Weights(groupSize:)` mode: the layer holds an
/// `Int4Weights` and gives its bits through every entry point; what belongs
/// to the int8 modes is refused by name. The kernels themselves are checked
/// against the contract in Int4WeightsTests.
@Suite("QuantizedLinear int4Weights mode")
struct QuantizedLinearInt4ModeTests {
    func data(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in rng.gaussian() * scale }
    }

    /// Every int4 path, array, buffer and Span calls, 1 and 2 threads, rows
    /// across the tiles' edges: the layer's bits are the Int4Weights' bits.
    @Test func theModeGivesTheInt4WeightsBits() throws {
        var rng = SplitMix64(seed: 61)
        let n = 53, k = 104
        let w = data(n * k, &rng, scale: 0.2), b = data(n, &rng)
        let smoothing = try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 7) * 0.25 })
        for (group, rule) in [(8, Int4Weights.GroupScales.absMax), (32, .minimizingError), (40, .absMax)] {
            let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                            mode: .int4Weights(groupSize: group), smoothing: smoothing, groupScales: rule)
            let direct = try Int4Weights(quantizing: w, outputChannels: n, inputChannels: k, groupSize: group, bias: b,
                                         smoothing: smoothing, groupScales: rule)
            let int4 = try #require(layer.int4Weights)
            #expect(layer.packed == nil)
            #expect(int4.scales == direct.scales && int4.groupSize == group)
            #expect(layer.smoothing?.factors == smoothing.factors)
            var workspace = QuantizedLinear.Workspace()
            for rows in [1, 7, 17, 33] {
                let x = data(rows * k, &rng, scale: 3)
                for path in KernelPath.availableInt4 {
                    for threads in [1, 2] {
                        let want = try direct(x, rows: rows, kernel: path, threads: threads).map(\.bitPattern)
                        #expect(try layer(x, rows: rows, kernel: path, threads: threads).map(\.bitPattern) == want,
                                "group \(group), \(rows) rows, \(path), \(threads) threads")
                        var y = [Float](repeating: .nan, count: rows * n + 1)
                        try x.withUnsafeBufferPointer { xb in
                            try y.withUnsafeMutableBufferPointer { yb in
                                try layer(xb, rows: rows, into: yb, workspace: &workspace, kernel: path, threads: threads)
                            }
                        }
                        #expect(y.prefix(rows * n).map(\.bitPattern) == want && y[rows * n].isNaN)
                        var spanOut = [Float](repeating: 0, count: rows * n)
                        var out = spanOut.mutableSpan
                        try layer(x.span, rows: rows, into: &out, workspace: &workspace, kernel: path, threads: threads)
                        #expect(spanOut.map(\.bitPattern) == want)
                    }
                }
            }
            #expect(workspace.byteCount > 0)
        }
    }

    /// `init(_:)` wraps weights built elsewhere (here the AWQ-style search):
    /// the mode names their group, and the bias and smoothing are theirs.
    @Test func wrappingSearchedWeights() throws {
        var rng = SplitMix64(seed: 67)
        let n = 24, k = 64, rows = 40
        let w = data(n * k, &rng, scale: 0.1), b = data(n, &rng)
        var x = data(rows * k, &rng)
        for r in 0..<rows { x[r * k + 5] *= 30 } // an outlier channel for the search to find
        let searched = try Int4Weights.searchingScales(weights: w, outputChannels: n, inputChannels: k, groupSize: 32, bias: b,
                                                       calibrationInput: x, rows: rows, steps: 4)
        let layer = QuantizedLinear(searched.weights)
        guard case .int4Weights(let group, .int8) = layer.mode else {
            Issue.record("mode is \(layer.mode.name)")
            return
        }
        #expect(group == 32 && layer.outputChannels == n && layer.inputChannels == k)
        #expect(layer.smoothing?.factors == searched.weights.smoothing?.factors)
        #expect(try layer(x, rows: rows).map(\.bitPattern) == (try searched.weights(x, rows: rows)).map(\.bitPattern))
    }

    /// What belongs to another mode is refused with a QGEMMError naming it.
    @Test func otherModesOptionsAreRefused() throws {
        var rng = SplitMix64(seed: 71)
        let n = 8, k = 16
        let w = data(n * k, &rng)
        #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perRow),
                                               groupScales: .absMax) } == .incompatibleParameters)
        #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .int4Weights(groupSize: 8),
                                               rounding: .doubleRounding) } == .incompatibleParameters)
        for bad in [0, 4, 12, 4104] {
            #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k,
                                                   mode: .int4Weights(groupSize: bad)) } == .invalidArgument, "group \(bad)")
        }
        #expect(errorCode { _ = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .int4Weights(groupSize: 8),
                                               smoothing: try Smoothing(factors: [1, 2])) } == .invalidShape)
        let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .int4Weights(groupSize: 8))
        #expect(layer.mode.name == "int4Weights")
        let x = data(2 * k, &rng)
        #expect(errorCode { let _: [UInt8] = try layer.quantizeInput(x) } == .incompatibleParameters)
        #expect(errorCode { let _: [Int8] = try layer.forward([UInt8](repeating: 0, count: 2 * k), rows: 2) } == .incompatibleParameters)
        #expect(errorCode { _ = try layer.dequantizeOutput([Int8](repeating: 0, count: n)) } == .incompatibleParameters)
        #expect(errorCode { _ = try layer(x, rows: 3) } == .invalidShape)
        #expect(errorCode { _ = try layer([Float](repeating: .nan, count: k), rows: 1) } == .invalidValue)
        #expect(errorCode { _ = try layer(x, rows: 2, threads: 0) } == .invalidArgument)
        for path in KernelPath.available where !path.hasInt4Kernel {
            #expect(errorCode { _ = try layer(x, rows: 2, kernel: path) } == .unsupportedKernel, "\(path)")
        }
    }

    /// Saved and loaded: the same bits and the same file; damaged int4-mode
    /// files are refused.
    @Test func safeTensorsRoundTripAndDamage() throws {
        var rng = SplitMix64(seed: 73)
        let n = 20, k = 36
        let layer = try QuantizedLinear(weights: data(n * k, &rng), outputChannels: n, inputChannels: k, bias: data(n, &rng),
                                        mode: .int4Weights(groupSize: 16))
        let file = try layer.safeTensors()
        #expect(file.metadata["format"] == QuantizedLinear.safeTensorsFormat && file.metadata["mode"] == "int4Weights")
        let bytes = try file.serialized()
        let loaded = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes))
        let x = data(5 * k, &rng)
        #expect(try loaded(x, rows: 5).map(\.bitPattern) == (try layer(x, rows: 5)).map(\.bitPattern))
        #expect(try loaded.safeTensors().serialized() == bytes)
        // An Int4Weights file is not a QuantizedLinear file, nor the other way round.
        #expect(throws: QGEMMError.self) { _ = try Int4Weights(safeTensors: try SafeTensorsFile(bytes: bytes)) }
        #expect(throws: QGEMMError.self) {
            _ = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: try layer.int4Weights!.safeTensors().serialized()))
        }
        func edited(tensors: (inout [String: SafeTensorsFile.Tensor]) -> Void = { _ in },
                    metadata: (inout [String: String]) -> Void = { _ in }) throws -> [UInt8] {
            var t = file.tensors, m = file.metadata
            tensors(&t)
            metadata(&m)
            return try SafeTensorsFile(tensors: t, metadata: m).serialized()
        }
        let int8File = try QuantizedLinear(weights: data(n * k, &rng), outputChannels: n, inputChannels: k,
                                           mode: .dynamic(.perRow)).safeTensors()
        var int8AsInt4 = int8File.metadata
        int8AsInt4["mode"] = "int4Weights"
        let damaged: [(String, [UInt8])] = [
            ("group size not a multiple of 8", try edited(metadata: { $0["group_size"] = "12" })),
            ("group size missing", try edited(metadata: { $0["group_size"] = nil })),
            ("K that does not fit the packed rows", try edited(metadata: { $0["input_channels"] = "50" })),
            ("packed weights missing", try edited(tensors: { $0["weight_packed"] = nil })),
            ("scales as F32", try edited(tensors: { $0["weight_scale"] = try? .init(float32: [Float](repeating: 1, count: n * 3), shape: [n, 3]) })),
            ("an int8 tensor beside them", try edited(tensors: { $0["weight"] = try? .init(int8: [Int8](repeating: 0, count: n * k), shape: [n, k]) })),
            ("mode dynamic on int4 tensors", try edited(metadata: { $0["mode"] = "dynamic" })),
            ("mode int4Weights on int8 tensors", try SafeTensorsFile(tensors: int8File.tensors, metadata: int8AsInt4).serialized()),
        ]
        for (what, bytes) in damaged {
            #expect(throws: QGEMMError.self, "\(what)") { _ = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes)) }
        }
    }
}
