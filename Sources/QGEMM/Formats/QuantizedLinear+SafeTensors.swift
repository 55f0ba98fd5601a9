import Foundation

/// Saving and loading a ``QuantizedLinear`` as safetensors, so that a layer
/// calibrated once is used in every later process (and read from Python with
/// the `safetensors` package).
///
/// Tensors (little-endian, row-major):
///
/// | name | dtype | shape | holds |
/// | --- | --- | --- | --- |
/// | `weight` | I8 | [N, K] | the int8 weights (with smoothing: of `W·diag(s)`) |
/// | `weight_scale` | F32 | [N] per channel, [1] per tensor | `S_W` |
/// | `bias` | F32 | [N] | the float bias `b`, when the layer has one |
/// | `bias_quantized` | I32 | [N] | static mode, with a bias or not: `q_b = round-half-away(b / (S_X·S_W[n]))` (all zero without a bias); required and checked on load |
/// | `smoothing` | F32 | [K] | SmoothQuant factors `s_j`, when the layer has them |
///
/// `__metadata__` (strings): `format` = `swift-qgemm.QuantizedLinear`, `version` = `1`,
/// `mode` (`dynamic`, `static`, `staticInput` or `int4Weights`); the int8 modes:
/// `weight_granularity` (`perChannel` or `perTensor`); dynamic: `input_granularity` (`perRow` or `perTensor`); staticInput: `input_type`,
/// `input_scale`, `input_zero_point`; static: `input_type`,
/// `input_scale`, `input_zero_point`, `output_type`, `output_scale`, `output_zero_point`,
/// `activation` (`none`, `relu`, `relu6`), `rounding` (`singleRounding`,
/// `doubleRounding`, `float`), `clamp_min`, `clamp_max`. Scales are written as
/// the shortest decimal that reads back as the same Float.
///
/// In `mode` `int4Weights` the tensors and the keys `input_channels` and
/// `group_size` are those of an ``Int4Weights`` file (`weight_packed`,
/// `weight_scale` in F16, `bias`, `smoothing`), with this format and mode.
///
/// Loading checks every name, dtype, shape and value (scales finite and > 0,
/// zero points and clamps in their type's range, input and output grids
/// that end within Float, the accumulator bound,
/// `bias_quantized` against the bias), refuses a metadata key its mode does
/// not use (one of another mode, say, which would otherwise be ignored) and
/// refuses a bad file with a
/// ``QGEMMError`` naming the problem; a loaded layer gives the same bits as
/// the layer that was saved.
extension QuantizedLinear {
    /// The `format` value in `__metadata__` that marks a QuantizedLinear file:
    /// `"swift-qgemm.QuantizedLinear"`.
    public static let safeTensorsFormat = "swift-qgemm.QuantizedLinear"

    /// The layer as a safetensors file (see the extension's documentation).
    public func safeTensors() throws -> SafeTensorsFile {
        let packed: PackedWeights
        switch weights {
        case .int4(let w):
            let file = try w.safeTensors()
            var meta = file.metadata
            meta["format"] = Self.safeTensorsFormat
            meta["mode"] = mode.name
            return SafeTensorsFile(tensors: file.tensors, metadata: meta)
        case .int8(let p):
            packed = p
        }
        let n = outputChannels, k = inputChannels
        var weights = [Int8](repeating: 0, count: n * k)
        for row in 0..<n {
            for col in 0..<k { weights[row * k + col] = try packed.weight(outputChannel: row, input: col) }
        }
        var tensors: [String: SafeTensorsFile.Tensor] = [
            "weight": try .init(int8: weights, shape: [n, k]),
            "weight_scale": packed.granularity == .perChannel
                ? try .init(float32: packed.weightScales, shape: [n]) : try .init(float32: [packed.weightScales[0]], shape: [1]),
        ]
        if let b = packed.floatBias { tensors["bias"] = try .init(float32: b, shape: [n]) }
        if let s = smoothing { tensors["smoothing"] = try .init(float32: s.factors, shape: [k]) }
        var meta = ["format": Self.safeTensorsFormat, "version": "1", "weight_granularity": packed.granularity.rawValue]
        switch mode {
        case .dynamic(let g):
            meta["mode"] = "dynamic"
            meta["input_granularity"] = g.rawValue
        case .staticInput(let input):
            meta["mode"] = "staticInput"
            meta["input_type"] = input.type.rawValue
            meta["input_scale"] = "\(input.scale)"
            meta["input_zero_point"] = "\(input.zeroPoint)"
        case .static(let input, let output, let activation):
            meta["mode"] = "static"
            meta["input_type"] = input.type.rawValue
            meta["input_scale"] = "\(input.scale)"
            meta["input_zero_point"] = "\(input.zeroPoint)"
            meta["output_type"] = output.type.rawValue
            meta["output_scale"] = "\(output.scale)"
            meta["output_zero_point"] = "\(output.zeroPoint)"
            meta["activation"] = activation.rawValue
            meta["rounding"] = packed.rounding.rawValue
            // The clamp the layer holds, which the loader derives again and compares.
            let clamp = packed.clamp ?? output.type.range
            meta["clamp_min"] = "\(clamp.lowerBound)"
            meta["clamp_max"] = "\(clamp.upperBound)"
            if let qb = packed.quantizedBias { tensors["bias_quantized"] = try .init(int32: qb, shape: [n]) }
        case .int4Weights:
            throw QGEMMError(.incompatibleParameters, "int4Weights mode does not match the layer's int8 weights")
        }
        return SafeTensorsFile(tensors: tensors, metadata: meta)
    }

    /// Writes ``safeTensors()`` to `url` (as ``SafeTensorsFile/write(to:)``:
    /// a regular file already there is replaced whole, in one rename, or kept
    /// whole if the write fails).
    public func save(to url: URL) throws { try safeTensors().write(to: url) }

    /// Loads a layer saved by ``save(to:)`` (or written to the same layout by
    /// another program). Every error's message begins with the file's path.
    public convenience init(contentsOf url: URL) throws {
        let file = try SafeTensorsFile(contentsOf: url)
        // The file's errors name it already; the layer's are named here.
        do { try self.init(safeTensors: file) } catch let e as QGEMMError { throw e.placed(url.path) }
    }

    /// A layer from a parsed safetensors file; see the extension's documentation.
    /// The scales written as text are read, and the layer's parameters
    /// derived, rounding to nearest whatever the calling thread's rounding
    /// mode: a file saved in the default environment loads to the same layer
    /// under `fesetround(FE_DOWNWARD)` too (read downward, "0.1" is another
    /// Float, and the layer was refused or multiplied otherwise).
    public convenience init(safeTensors file: SafeTensorsFile) throws {
        let (weights, mode, smoothing) = try withRoundingToNearest { try Self.parts(of: file) }
        self.init(weights: weights, mode: mode, smoothing: smoothing)
    }

    /// The weights, mode and smoothing of the layer a file holds, checked.
    private static func parts(of file: SafeTensorsFile) throws -> (Weights, Mode, Smoothing?) {
        let fail = try file.layerFileRefusal(kind: "QuantizedLinear", format: Self.safeTensorsFormat)
        let meta = file.metadata
        if let mode = meta["mode"], let keys = Self.metadataKeys[mode] {
            try file.refuseUnknownMetadataKeys(keys.union(["mode"]), of: "mode '\(mode)'", fail)
        }
        if meta["mode"] == "int4Weights" {
            let w = try Int4Weights(safeTensors: file, refusal: fail)
            return (.int4(w), .int4Weights(groupSize: w.groupSize, activations: w.activations), w.smoothing)
        }
        func string(_ key: String) throws -> String {
            guard let v = meta[key] else { throw fail("__metadata__ has no '\(key)'") }
            return v
        }
        func tensor(_ name: String, _ dtype: SafeTensorsFile.DType, _ shape: [Int]) throws -> SafeTensorsFile.Tensor? {
            guard let t = file.tensors[name] else { return nil }
            guard t.dtype == dtype, t.shape == shape else {
                throw fail("tensor '\(name)' is \(t.dtype.rawValue) \(t.shape), expected \(dtype.rawValue) \(shape)")
            }
            return t
        }
        let known: Set<String> = ["weight", "weight_scale", "bias", "bias_quantized", "smoothing"]
        if let extra = file.tensors.keys.sorted().first(where: { !known.contains($0) }) { throw fail("unknown tensor '\(extra)'") }
        guard let w = file.tensors["weight"] else { throw fail("no 'weight' tensor") }
        guard w.dtype == .int8, w.shape.count == 2, w.shape[0] >= 1, w.shape[1] >= 1 else {
            throw fail("'weight' is \(w.dtype.rawValue) \(w.shape), expected I8 [N, K] with N, K ≥ 1")
        }
        let n = w.shape[0], k = w.shape[1]
        let granularity: PackedWeights.Granularity
        switch try string("weight_granularity") {
        case "perChannel": granularity = .perChannel
        case "perTensor": granularity = .perTensor
        case let g: throw fail("weight_granularity '\(g)' is not perChannel or perTensor")
        }
        guard let scaleTensor = try tensor("weight_scale", .float32, [granularity == .perChannel ? n : 1]) else {
            throw fail("no 'weight_scale' tensor")
        }
        // tensor(_:_:_:) checked the dtype (F32) and the shape ([N] or [1], N ≥ 1),
        // so the values exist and there is at least one.
        guard let scaleValues = scaleTensor.float32Values, let firstScale = scaleValues.first else {
            throw fail("'weight_scale' is not F32 with at least one value")
        }
        let scales: PackedWeights.WeightScales = granularity == .perChannel ? .perChannel(scaleValues) : .perTensor(firstScale)
        let bias = try tensor("bias", .float32, [n])?.float32Values
        let smoothing = try tensor("smoothing", .float32, [k]).map { t -> Smoothing in
            guard let factors = t.float32Values else { throw fail("'smoothing' is not F32") }
            return try Smoothing(factors: factors)
        }
        guard let weights = w.int8Values else { throw fail("'weight' is not I8") }

        func parameters(_ prefix: String) throws -> QuantizationParameters {
            guard let type = QuantizedType(rawValue: try string(prefix + "_type")) else { throw fail("\(prefix)_type is not int8 or uint8") }
            guard let scale = Float(try string(prefix + "_scale")) else { throw fail("\(prefix)_scale is not a number") }
            guard let zero = Int32(try string(prefix + "_zero_point")) else { throw fail("\(prefix)_zero_point is not an integer") }
            // Named by its keys: a file holds input and output parameters.
            do { return try QuantizationParameters(type: type, scale: scale, zeroPoint: zero) } catch let e as QGEMMError {
                throw e.placed("\(prefix)_scale, \(prefix)_zero_point")
            }
        }
        let mode: Mode
        let packed: PackedWeights
        switch try string("mode") {
        case "dynamic":
            guard let g = InputGranularity(rawValue: try string("input_granularity")) else {
                throw fail("input_granularity is not perRow or perTensor")
            }
            guard file.tensors["bias_quantized"] == nil else { throw fail("'bias_quantized' belongs to static layers") }
            mode = .dynamic(g)
            packed = try PackedWeights(weights: weights, outputChannels: n, inputChannels: k, scales: scales, bias: bias.map { .float($0) })
        case "staticInput":
            guard file.tensors["bias_quantized"] == nil else { throw fail("'bias_quantized' belongs to static layers") }
            let input = try parameters("input")
            mode = .staticInput(input)
            packed = try PackedWeights(weights: weights, outputChannels: n, inputChannels: k, scales: scales, bias: bias.map { .float($0) },
                                       input: input)
            try packed.checkScaleProduct(input.scale, for: "static input")
        case "static":
            let input = try parameters("input"), output = try parameters("output")
            guard let activation = Activation(rawValue: try string("activation")) else { throw fail("activation is not none, relu or relu6") }
            guard let rounding = RoundingMode(rawValue: try string("rounding")) else {
                throw fail("rounding is not singleRounding, doubleRounding or float")
            }
            let clamp = try Self.clamp(for: activation, output: output)
            // Both keys are read (and a missing one refused) before either is compared.
            let savedMin = try string("clamp_min"), savedMax = try string("clamp_max")
            guard savedMin == "\(clamp.lowerBound)", savedMax == "\(clamp.upperBound)" else {
                throw fail("clamp \(savedMin)...\(savedMax) is not \(clamp) (the \(activation.rawValue) clamp of the output parameters)")
            }
            mode = .static(input: input, output: output, activation: activation)
            packed = try PackedWeights(weights: weights, outputChannels: n, inputChannels: k, scales: scales, bias: bias.map { .float($0) },
                                       input: input, output: output, rounding: rounding, clamp: clamp)
            let saved = try tensor("bias_quantized", .int32, [n])?.int32Values
            guard saved == packed.quantizedBias else {
                throw fail(saved == nil ? "a static layer needs 'bias_quantized' (all zero without a bias)"
                                        : "'bias_quantized' does not match the bias quantized with S_X·S_W")
            }
        case let m:
            throw fail("mode '\(m)' is not dynamic, static, staticInput or int4Weights")
        }
        return (.int8(packed), mode, smoothing)
    }
}

extension QuantizedLinear {
    /// The `__metadata__` keys each mode's file holds, besides `format`,
    /// `version` and `mode`.
    static let metadataKeys: [String: Set<String>] = {
        let input: Set<String> = ["input_type", "input_scale", "input_zero_point"]
        return [
            "dynamic": ["weight_granularity", "input_granularity"],
            "staticInput": input.union(["weight_granularity"]),
            "static": input.union(["weight_granularity", "output_type", "output_scale", "output_zero_point", "activation",
                                   "rounding", "clamp_min", "clamp_max"]),
            "int4Weights": Int4Weights.metadataKeys,
        ]
    }()
}

extension SafeTensorsFile {
    /// The check every layer file's loader starts with: `__metadata__`'s
    /// `format` is `format` and its `version` is 1. Throws the refusal
    /// otherwise; returns the maker of the loader's own refusals, each
    /// "not a swift-qgemm KIND file: …" (``QGEMMError/Code/file``).
    func layerFileRefusal(kind: String, format: String) throws -> (String) -> QGEMMError {
        let fail = { (why: String) in QGEMMError(.file, "not a swift-qgemm \(kind) file: \(why)") }
        guard metadata["format"] == format else { throw fail("__metadata__ format is \(metadata["format"].map { "'\($0)'" } ?? "missing")") }
        guard metadata["version"] == "1" else { throw fail("version \(metadata["version"] ?? "missing") is not 1") }
        return fail
    }

    /// Refuses a `__metadata__` key outside `keys`, `format` and `version`.
    /// A key the loader does not read means the file was written for
    /// something else (another mode, another layer kind, a later version),
    /// and loading it as this one could give silently wrong answers.
    func refuseUnknownMetadataKeys(_ keys: Set<String>, of what: String, _ fail: (String) -> QGEMMError) throws {
        let allowed = keys.union(["format", "version"])
        if let extra = metadata.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail("__metadata__ key '\(extra)' is not one of the keys of \(what) (\(allowed.sorted().joined(separator: ", ")))")
        }
    }
}
