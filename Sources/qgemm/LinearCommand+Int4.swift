import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

/// `--group-scales`: how each group's binary16 scale is chosen.
enum GroupScalesArgument: String, ExpressibleByArgument, CaseIterable {
    case absmax, minimizingError = "minimizing-error"
    var rule: Int4Weights.GroupScales { self == .absmax ? .absMax : .minimizingError }
}

/// `--activations`: how a 4-bit layer quantizes its input rows.
enum ActivationsArgument: String, ExpressibleByArgument, CaseIterable {
    case int8, uint8
    var kind: Int4Weights.Activations { self == .int8 ? .int8 : .uint8 }
}

// `qgemm linear --weights int4`: the layer as Int4Weights (dynamic
// activations per row, int8 or uint8, Float out), built from --w, saved with --save, run
// from --load.
extension LinearCommand {
    /// The int4 options go with --weights int4, and int4 goes with none of
    /// the int8 modes' options.
    func validateInt4() throws {
        let int4 = weights == .int4
        for (isGiven, option) in [(groupSize != nil, "--group-size"), (groupScales != nil, "--group-scales"), (awq, "--awq"),
                                  (gptq != nil, "--gptq"), (activations != nil, "--activations")] {
            // With --load the file says what the layer is: --weights does not go with it either.
            try OptionCheck.unused(isGiven && !int4, option,
                                   load != nil ? "does not go with --load (the file holds the whole layer)" : "applies only with --weights int4")
        }
        if let g = groupSize, !Int4Weights.isValidGroupSize(g) {
            throw ValidationError("--group-size must be a multiple of 8 from 8 to 4096, got \(g)")
        }
        if let gptq, (try? Int4Weights.ErrorCompensation.gptq(damping: gptq).check()) == nil {
            throw ValidationError("--gptq must be in (0, 10], got \(gptq)")
        }
        guard int4 else { return }
        // Before the layer is quantized (with --awq, searched): a path without 4-bit tiles would refuse the call after it.
        if let kernel, !kernel.hasInt4Kernel {
            throw ValidationError("kernel path '\(kernel)' has no 4-bit-weight kernel; paths with one: "
                                  + KernelPath.availableInt4.map(\.rawValue).joined(separator: ", "))
        }
        try OptionCheck.unused(gptq != nil && !awq, "--gptq", "follows the --awq search (it needs the --calibrate data)")
        try OptionCheck.unused(awq && calibrate == nil, "--awq", "needs --calibrate CALIB_X.npy (the inputs its search measures on)")
        try OptionCheck.unused(calibrate != nil && !awq, "--calibrate", "with --weights int4 goes with --awq (int4 activations are quantized per row at run time)")
        let int8Only = [(mode != nil, "--mode"), (granularity != nil, "--granularity"), (xScale != nil, "--x-scale"),
                        (xZeroPoint != nil, "--x-zero-point"), (yScale != nil, "--y-scale"), (yZeroPoint != nil, "--y-zero-point"),
                        (observer != nil, "--observer"), (percentile != nil, "--percentile"), (batch != nil, "--batch"),
                        (rounding != nil, "--rounding"), (smooth != nil, "--smooth")]
        for (isGiven, option) in int8Only {
            try OptionCheck.unused(isGiven, option, "applies only to int8 weights (--weights int4 quantizes its input per row and writes Float)")
        }
    }

    /// Whether `file` is a safetensors file of Int4Weights (by its format key).
    static func holdsInt4Weights(_ file: String) throws -> Bool {
        let parsed: SafeTensorsFile
        do { parsed = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: file)) } catch let e as QGEMMError {
            throw QGEMMError(e.code, "--load \(file): \(e.message)")
        }
        return parsed.metadata["format"] == Int4Weights.safeTensorsFormat
    }

    func runInt4() throws {
        let (xv, wv, bv, m, k, n) = try readLayerFiles()
        // Before the packing and any --awq search: --json's sgemm timing must be possible.
        try checkSgemmTiming(m: m, n: n, k: k, copyingWeights: true, copyingInput: awq)
        let group = groupSize ?? 32, rule = (groupScales ?? .absmax).rule
        let kind = (activations ?? .int8).kind
        var report: [String: Any] = ["m": m, "k": k, "n": n, "weights": "int4", "group_size": group,
                                     "group_scales": (groupScales ?? .absmax).rawValue, "activations": kind.rawValue]
        let layer: Int4Weights
        if let calibrate {
            let file = NPYOption(option: "--calibrate", path: calibrate, needs: "float16, float32 or float64 [rows,K] with the K of --x")
            let ca = try file.read()
            let (c, rows) = try file.naming {
                let cs = try ca.requireRank(2, name: "the calibration data")
                guard cs[1] == k else { throw QGEMMError(.invalidShape, "calibration data is \(cs), K must be \(k)") }
                return (try ca.floatValues(), cs[0])
            }
            // The search runs the layer on the calibration rows once per α, and GPTQ-style rounding
            // factors a K×K matrix: a minute or more on large layers, with no output of its own.
            let started = Date()
            FileHandle.standardError.write(Data(("linear: searching AWQ-style scales for N = \(n), K = \(k) on \(rows) calibration rows"
                                                 + (gptq != nil ? ", then GPTQ-style rounding" : "") + "…\n").utf8))
            let searched = try Int4Weights.searchingScales(weights: wv, outputChannels: n, inputChannels: k, groupSize: group,
                                                          bias: bv, calibrationInput: c, rows: rows, groupScales: rule,
                                                          errorCompensation: gptq.map { .gptq(damping: $0) } ?? .none,
                                                          activations: kind, threads: threads)
            layer = searched.weights
            FileHandle.standardError.write(Data(String(format: "linear: the search took %.1f s (α = %.2f)\n",
                                                       Date().timeIntervalSince(started), searched.alpha).utf8))
            report["awq_alpha"] = searched.alpha
            // As given on the command line, not widened from Float (0.1, not 0.10000000149…).
            if let gptq { report["gptq_damping"] = Double("\(gptq)") ?? Double(gptq) }
        } else {
            layer = try Int4Weights(quantizing: wv, outputChannels: n, inputChannels: k, groupSize: group, bias: bv, groupScales: rule,
                                    activations: kind)
        }
        try finishInt4(layer, xv, m: m, report: report, save: save)
    }

    func runSavedInt4(_ file: String) throws {
        let layer: Int4Weights
        do { layer = try Int4Weights(contentsOf: URL(fileURLWithPath: file)) } catch let e as QGEMMError {
            throw QGEMMError(e.code, "--load \(file): \(e.message)")
        }
        try runSavedInt4(layer, from: file)
    }

    /// `--load` of 4-bit weights: an Int4Weights file, or a QuantizedLinear
    /// file in int4Weights mode (`mode`, which the report names).
    func runSavedInt4(_ layer: Int4Weights, from file: String, mode: String? = nil) throws {
        let (xv, m) = try readInput(forSavedK: layer.inputChannels, outputs: layer.outputChannels)
        var report: [String: Any] = ["m": m, "k": layer.inputChannels, "n": layer.outputChannels, "loaded": file,
                                     "weights": "int4", "group_size": layer.groupSize, "activations": layer.activations.rawValue]
        report["mode"] = mode
        try finishInt4(layer, xv, m: m, report: report)
    }

    /// Runs the layer, then saves it (`save`, --save: nothing is written
    /// when X is refused) and writes Y and, with --json, the timings (the
    /// int4 layer against sgemm on its dequantized weights) and the report.
    func finishInt4(_ layer: Int4Weights, _ xv: [Float], m: Int, report: [String: Any], save: String? = nil) throws {
        var report = report
        let n = layer.outputChannels, k = layer.inputChannels, groups = layer.groupCount
        try checkSgemmTiming(m: m, n: n, k: k, copyingWeights: true, copyingInput: layer.smoothing != nil)
        let y = try layer(xv, rows: m, kernel: kernel, threads: threads)
        if let save { try layer.save(to: URL(fileURLWithPath: save)) }
        try NPYArray(float32: y, shape: [m, n]).write(to: URL(fileURLWithPath: out))
        guard let json else { return }
        // sgemm on the weights the layer holds (with smoothing: of W·diag(s), on X·diag(1/s)).
        var wv = [Float](repeating: 0, count: n * k)
        for row in 0..<n {
            for col in 0..<k {
                wv[row * k + col] = Float(try layer.value(outputChannel: row, input: col)) * layer.scales[row * groups + col / layer.groupSize]
            }
        }
        let sx = try layer.smoothing?.apply(xv, rows: m) ?? xv
        let t4 = try medianSeconds { _ = try layer(xv, rows: m, kernel: kernel, threads: threads) }
        BLAS.threads = threads ?? CPUFeatures.current.cores
        let tf = try medianSeconds {
            var yf = try BLAS.sgemm(sx, wv, m: m, k: k, n: n, transposeB: true)
            if let bv = layer.bias { for i in yf.indices { yf[i] += bv[i % n] } }
        }
        report["int4_seconds"] = t4
        report["sgemm_seconds"] = tf
        let processDefault = (try? KernelPath.processDefault.get()).flatMap { $0.hasInt4Kernel ? $0 : nil }
        report["kernel"] = (kernel ?? processDefault ?? KernelPath.bestInt4).rawValue
        try OutputFile.write(try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), to: json)
    }
}
