import Foundation
import QGEMM
@testable import SentenceEmbeddings
import Testing

/// Calibrated encoders: layers built from a Float pass over sample
/// sentences, saved and loaded as safetensors, and measured by the study
/// scripts/minilm-check runs.
@Suite("Calibrated layers")
struct CalibratedLayerTests {
    static let samples = Array(CalibrationSentences.all.prefix(8))
    static let probe = ["A man is playing a guitar on the stage.", "The stock market fell sharply today.", "Cats sleep a lot."]

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("calibrated-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An encoder of `recipe` calibrated on `inputs`, saved into `url` and
    /// loaded again, and the first one's embeddings of the probe, which the
    /// loaded one must give bit for bit.
    func savedAndLoaded(_ recipe: LayerRecipe, _ checkpoint: Checkpoint, _ inputs: CalibrationInputs,
                        _ url: URL) throws -> (SentenceEncoder, SentenceEncoder, [[Float]]) {
        let encoder = try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in recipe }, calibration: inputs)
        try encoder.saveLayers(to: url)
        let loaded = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
        let a = try encoder.embed(Self.probe)
        #expect(try loaded.embed(Self.probe) == a, "\(recipe)")
        return (encoder, loaded, a)
    }

    /// Each layer's calibration inputs are the rows of all sample sentences,
    /// and a static-input encoder saved and loaded again gives the same bits;
    /// its embeddings stay close to Float's.
    @Test func savedLayersLoadToTheSameEncoder() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: Self.samples)
        let tokens = Self.samples.reduce(0) { $0 + checkpoint.tokenizer.encode($1).count }
        #expect(inputs.inputs.count == 36)
        #expect(inputs.inputs["2.intermediate.dense"]?.rows == tokens)
        #expect(inputs.inputs["2.output.dense"]?.values.count == tokens * checkpoint.config.intermediateSize)
        for recipe in [LayerRecipe.calibrated(.staticInput, .minMax, smoothingAlpha: nil),
                       .calibrated(.static, .movingAverage, smoothingAlpha: 0.5)] {
            let url = try folder()
            defer { try? FileManager.default.removeItem(at: url) }
            let (_, _, a) = try savedAndLoaded(recipe, checkpoint, inputs, url)
            let float = try SentenceEncoder(checkpoint: checkpoint, precision: .float).embed(Self.probe)
            for (x, y) in zip(a, float) {
                #expect(EncoderTests.cosine(x, y) > (recipe.modeName == "static" ? 0.8 : 0.98), "\(recipe)")
            }
        }
    }

    /// A folder with a layer missing, of the wrong shape, or dynamic is
    /// refused with an error naming the file; a dynamic encoder has nothing
    /// to save; a calibrated recipe without calibration inputs is refused.
    @Test func badSavedLayersAreRefusedByName() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: Array(Self.samples.prefix(2)))
        let url = try folder()
        defer { try? FileManager.default.removeItem(at: url) }
        try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in .calibrated(.staticInput, .minMax, smoothingAlpha: nil) },
                            calibration: inputs).saveLayers(to: url)
        let victim = url.appendingPathComponent("3.output.dense.safetensors"), saved = try Data(contentsOf: victim)
        func refused(_ name: String) {
            do {
                _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
                Issue.record("loaded a folder where \(name)")
            } catch let e as QGEMMError {
                #expect(e.message.contains("3.output.dense.safetensors"), "\(name): \(e.message)")
            } catch { Issue.record("\(name): \(error)") }
        }
        try FileManager.default.removeItem(at: victim)
        refused("the file is missing")
        try QuantizedLinear(weights: [Float](repeating: 0.1, count: 12), outputChannels: 3, inputChannels: 4,
                            mode: .staticInput(try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8))).save(to: victim)
        refused("the layer has the wrong shape")
        let part = checkpoint.weights.layers[3].output
        try QuantizedLinear(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs, bias: part.bias,
                            mode: .dynamic(.perRow)).save(to: victim)
        refused("the layer is dynamic")
        try saved.prefix(saved.count / 2).write(to: victim)
        refused("the file is truncated")
        // Another layer's file of the same shape (layer 2's output, 384×1536) in its place.
        try FileManager.default.removeItem(at: victim)
        try FileManager.default.copyItem(at: url.appendingPathComponent("2.output.dense.safetensors"), to: victim)
        refused("another layer's file is in its place")
        // The weights alone tell: this layer's bias with layer 2's weights.
        let other2 = checkpoint.weights.layers[2].output
        try QuantizedLinear(weights: other2.weight, outputChannels: part.outputs, inputChannels: part.inputs, bias: part.bias,
                            mode: .staticInput(try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8))).save(to: victim)
        refused("another layer's weights are in its file")
        // Without a bias (the checkpoint's layer has one).
        try QuantizedLinear(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs,
                            mode: .staticInput(try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8))).save(to: victim)
        refused("the file has no bias")
        // Every weight is compared, not a sample of channels: one weight of
        // channel 1 three steps off (a damaged byte) is refused, by place.
        var damaged = part.weight
        let step = (damaged[part.inputs..<(2 * part.inputs)].map(abs).max() ?? 0) / 127
        damaged[part.inputs + 5] += 3 * step
        try QuantizedLinear(weights: damaged, outputChannels: part.outputs, inputChannels: part.inputs, bias: part.bias,
                            mode: .staticInput(try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8))).save(to: victim)
        do {
            _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
            Issue.record("loaded a layer with one damaged weight")
        } catch let e as QGEMMError {
            #expect(e.message.contains("3.output.dense.safetensors") && e.message.contains("weight [1, 5]"), "\(e.message)")
        }
        // A static layer with a fused ReLU (the encoder never writes one): it would cut every negative output.
        try QuantizedLinear(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs, bias: part.bias,
                            mode: .static(input: try QuantizationParameters(observedMin: -1, observedMax: 1, type: .uint8),
                                          output: try QuantizationParameters(observedMin: -4, observedMax: 4, type: .int8),
                                          activation: .relu)).save(to: victim)
        do {
            _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
            Issue.record("loaded a layer with a fused ReLU")
        } catch let e as QGEMMError {
            #expect(e.message.contains("3.output.dense.safetensors") && e.message.contains("relu"), "\(e.message)")
        }
        // A true layer (with smoothing) differs by quantization only; another one by far more.
        var worstTrue = 0.0, leastSwapped = Double.infinity
        for alpha in [nil, 0.5, 1] as [Float?] {
            let smoothed = try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in .calibrated(.staticInput, .minMax, smoothingAlpha: alpha) },
                                               calibration: inputs)
            for l in 0..<checkpoint.weights.layers.count {
                for (name, layerPart) in zip(SentenceEncoder.linearNames(layer: l), checkpoint.weights.layers[l].linears) {
                    let q = try #require(smoothed.calibratedLayers[name])
                    worstTrue = max(worstTrue, try SentenceEncoder.weightDifference(q, layerPart).steps)
                    let swapped = checkpoint.weights.layers[(l + 1) % checkpoint.weights.layers.count].linears
                        .first { $0.outputs == layerPart.outputs && $0.inputs == layerPart.inputs }!
                    leastSwapped = min(leastSwapped, try SentenceEncoder.weightDifference(q, swapped).steps)
                }
            }
        }
        // True layers round every weight by at most half a step; another layer's weights lie many steps away.
        #expect(worstTrue <= SentenceEncoder.sameLayerMaxSteps && leastSwapped > 4 * SentenceEncoder.sameLayerMaxSteps,
                "true layers up to \(worstTrue) steps, swapped ones from \(leastSwapped)")
        print("saved layers: weight difference of true layers up to \(worstTrue) steps, of swapped ones from \(leastSwapped)")
        // A save that fails part-way (here a folder in the way of one layer's
        // partial file) leaves the earlier layers as they were and no partial file.
        let before = try Data(contentsOf: url.appendingPathComponent("0.attention.self.query.safetensors"))
        let blocker = url.appendingPathComponent("5.output.dense.safetensors.partial")
        try FileManager.default.createDirectory(at: blocker, withIntermediateDirectories: true)
        let other = try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in .calibrated(.staticInput, .entropy, smoothingAlpha: nil) },
                                        calibration: inputs)
        #expect(throws: QGEMMError.self) { try other.saveLayers(to: url) }
        #expect(try Data(contentsOf: url.appendingPathComponent("0.attention.self.query.safetensors")) == before)
        let partials = try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".partial") }
        #expect(partials == ["5.output.dense.safetensors.partial"], "\(partials)")
        try FileManager.default.removeItem(at: blocker)
        // A stale link named like a partial file is replaced, not written through.
        let outside = url.deletingLastPathComponent().appendingPathComponent("outside-\(UUID().uuidString)")
        try Data("keep".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createSymbolicLink(at: url.appendingPathComponent("4.output.dense.safetensors.partial"), withDestinationURL: outside)
        try other.saveLayers(to: url)
        #expect(try Data(contentsOf: outside) == Data("keep".utf8))
        #expect(try Data(contentsOf: url.appendingPathComponent("0.attention.self.query.safetensors")) != before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".partial") }.isEmpty)
        // The min/max save's query (the same int8 weights and bias, other input parameters) among the
        // entropy save's layers passes the weight check, not layers.json; without layers.json (a
        // folder saved before it existed) it loads.
        let query = url.appendingPathComponent("0.attention.self.query.safetensors"), entropyQuery = try Data(contentsOf: query)
        try before.write(to: query)
        do {
            _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
            Issue.record("loaded a layer of another save")
        } catch let e as QGEMMError {
            #expect(e.message.contains("0.attention.self.query.safetensors") && e.message.contains("not the file"), "\(e.message)")
        }
        let manifest = url.appendingPathComponent("layers.json"), manifestBytes = try Data(contentsOf: manifest)
        try FileManager.default.removeItem(at: manifest)
        _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
        // A link to nothing in the manifest's place is not "no manifest".
        try FileManager.default.createSymbolicLink(at: manifest, withDestinationURL: url.appendingPathComponent("nowhere.json"))
        #expect(throws: QGEMMError.self) { _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url) }
        try FileManager.default.removeItem(at: manifest)
        try manifestBytes.write(to: manifest)
        try entropyQuery.write(to: query)
        _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
        // A pipe named like the manifest's partial file is replaced, not written into (which would block).
        #expect(mkfifo(url.appendingPathComponent("layers.json.partial").path, 0o644) == 0)
        try other.saveLayers(to: url)
        _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
        #expect(throws: QGEMMError.self) { try SentenceEncoder(checkpoint: checkpoint, precision: .int8(.perRow)).saveLayers(to: url) }
        #expect(throws: QGEMMError.self) {
            _ = try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in .calibrated(.static, .mse, smoothingAlpha: nil) }, calibration: nil)
        }
    }

    /// 4-bit layers with searched scales (AWQ-style, then GPTQ-style rounding;
    /// group 32 with int8 rows, and one group per channel with uint8 rows),
    /// query, key and value searched as one, are saved and loaded to the
    /// same bits. Their folder's layers.json refuses, by file, another
    /// layer's file, a damaged one (one scale, one nibble), a layer of
    /// another checkpoint, and a folder without it; query, key and value of
    /// different smoothing run apart, each as alone. (The two kinds are two
    /// cases, so that their searches can run side by side.)
    @Test(arguments: [false, true]) func savedInt4LayersLoadToTheSameEncoder(uint8Rows: Bool) throws {
        let checkpoint = try TestModel.checkpoint.get()
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: Self.samples)
        let float = try SentenceEncoder(checkpoint: checkpoint, precision: .float).embed(Self.probe)
        let uint8Recipe = LayerRecipe.int4Searched(groupSize: 4096, errorCompensation: .gptq(), activations: .uint8)
        for recipe in [uint8Rows ? uint8Recipe : LayerRecipe.int4Searched(groupSize: 32, errorCompensation: .gptq())] {
            let url = try folder()
            defer { try? FileManager.default.removeItem(at: url) }
            let (encoder, loaded, a) = try savedAndLoaded(recipe, checkpoint, inputs, url)
            for (x, y) in zip(a, float) { #expect(EncoderTests.cosine(x, y) > 0.9, "\(recipe)") }
            // Query, key and value were searched as one and run as one call, saved as three files and loaded as one again.
            for e in [encoder, loaded] {
                guard case .quantized(let qkv) = e.layers[0].qkv else { Issue.record("query, key and value run apart"); continue }
                #expect(qkv.outputChannels == 3 * checkpoint.config.hiddenSize)
            }
            #expect(loaded.calibratedLayers.values.allSatisfy { $0.int4Weights?.activations == (recipe == uint8Recipe ? .uint8 : .int8) })
            // Each of the three saved layers is its own channels of the call that runs them, bit for bit.
            guard case .quantized(let qkv) = encoder.layers[0].qkv else { continue }
            let h = checkpoint.config.hiddenSize, rows = 3
            let probe = (0..<(rows * h)).map { Float(($0 * 7919) % 101) / 50 - 1 }
            let together = try qkv(probe, rows: rows)
            for (j, name) in SentenceEncoder.linearNames(layer: 0).prefix(3).enumerated() {
                let layer = try #require(encoder.calibratedLayers[name])
                let alone = try layer(probe, rows: rows)
                for r in 0..<rows {
                    let start = r * 3 * h + j * h
                    let mine: [Float] = Array(together[start..<(start + h)]), own: [Float] = Array(alone[(r * h)..<((r + 1) * h)])
                    #expect(mine == own, "\(name)")
                }
            }
            guard recipe != uint8Recipe else { continue }
            let victim = url.appendingPathComponent("3.output.dense.safetensors"), good = try Data(contentsOf: victim)
            func refused(_ what: String, saying: String = "3.output.dense.safetensors") {
                do {
                    _ = try SentenceEncoder(checkpoint: checkpoint, savedLayers: url)
                    Issue.record("loaded a folder where \(what)")
                } catch let e as QGEMMError {
                    #expect(e.message.contains(saying), "\(what): \(e.message)")
                } catch { Issue.record("\(what): \(error)") }
            }
            // Another layer's file of the same shape in this one's place.
            try FileManager.default.removeItem(at: victim)
            try FileManager.default.copyItem(at: url.appendingPathComponent("2.output.dense.safetensors"), to: victim)
            refused("another layer's 4-bit file is in its place")
            // This layer's own values and bias, one group's scale 16 times too large; then one nibble off by one.
            let w = try #require(encoder.calibratedLayers["3.output.dense"]?.int4Weights)
            var values = [Int8](), scales = w.scales
            for n in 0..<w.outputChannels {
                for k in 0..<w.inputChannels { values.append(try w.value(outputChannel: n, input: k)) }
            }
            func save(_ values: [Int8], _ scales: [Float]) throws {
                try QuantizedLinear(Int4Weights(values: values, scales: scales, outputChannels: w.outputChannels,
                                                inputChannels: w.inputChannels, groupSize: w.groupSize, bias: w.bias,
                                                smoothing: w.smoothing)).save(to: victim)
            }
            scales[5 * w.groupCount + 7] *= 16
            try save(values, scales)
            refused("a scale is damaged", saying: "not the file")
            scales[5 * w.groupCount + 7] /= 16
            var nibble = values
            nibble[5 * w.inputChannels + 230] = nibble[5 * w.inputChannels + 230] == 7 ? 6 : nibble[5 * w.inputChannels + 230] + 1
            try save(nibble, scales)
            refused("a nibble is damaged", saying: "not the file")
            // The same values and scales rebuilt give the same bytes, and load.
            try save(values, scales)
            #expect(try Data(contentsOf: victim) == good)
            #expect(try SentenceEncoder(checkpoint: checkpoint, savedLayers: url).embed(Self.probe) == a)
            // The manifest's other half: the checkpoint layer each file was made from.
            let manifestURL = url.appendingPathComponent("layers.json"), manifest = try Data(contentsOf: manifestURL)
            var edited = try #require(try SavedLayersManifest.read(folder: url))
            edited.layers["3.output.dense"]?.checkpoint = SavedLayersManifest.checkpointFingerprint(checkpoint.weights.layers[2].output)
            try edited.json().write(to: manifestURL)
            refused("the layer was made from another checkpoint layer", saying: "made from another checkpoint's 3.output.dense")
            edited.layers["3.output.dense"] = nil
            try edited.json().write(to: manifestURL)
            refused("the manifest has no entry for a layer", saying: "no entry for 3.output.dense")
            try Data("{\"format\": 1}".utf8).write(to: manifestURL)
            refused("the manifest is not one", saying: "not a manifest of saved layers")
            try FileManager.default.removeItem(at: manifestURL)
            refused("4-bit layers have no manifest", saying: "has none; save the layers again")
            try manifest.write(to: manifestURL)
            // Query, key and value whose smoothing differs (the query's own absMax weights, none) run as
            // three calls, each as it would alone.
            let part = checkpoint.weights.layers[0].query
            let plain = try QuantizedLinear(weights: part.weight, outputChannels: part.outputs, inputChannels: part.inputs,
                                            bias: part.bias, mode: .int4Weights(groupSize: 32))
            var layers = loaded.calibratedLayers
            layers["0.attention.self.query"] = plain
            let mixed = try SentenceEncoder(checkpoint: checkpoint, loaded: layers)
            guard case .stacked(let apart) = mixed.layers[0].qkv, apart.count == 3 else {
                Issue.record("query, key and value of different smoothing did not run apart")
                continue
            }
            let x = (0..<(4 * part.inputs)).map { Float(($0 * 7919) % 101) / 50 - 1 }
            var y = [Float](repeating: 0, count: 4 * part.outputs), workspace = QuantizedLinear.Workspace(), parts: [Float] = []
            try x.withUnsafeBufferPointer { xs in
                try y.withUnsafeMutableBufferPointer { try apart[0](xs, rows: 4, into: $0, workspace: &workspace, parts: &parts, threads: 1) }
            }
            #expect(y == (try plain(x, rows: 4)))
            // The three as one stacked layer: each part's output in its own columns.
            let stacked = mixed.layers[0].qkv, total = stacked.outputs
            var whole = [Float](repeating: .nan, count: 4 * total)
            try x.withUnsafeBufferPointer { xs in
                try whole.withUnsafeMutableBufferPointer { try stacked(xs, rows: 4, into: $0, workspace: &workspace, parts: &parts, threads: 2) }
            }
            var column = 0
            for layer in apart {
                var alone = [Float](repeating: 0, count: 4 * layer.outputs)
                try x.withUnsafeBufferPointer { xs in
                    try alone.withUnsafeMutableBufferPointer { try layer(xs, rows: 4, into: $0, workspace: &workspace, parts: &parts, threads: 1) }
                }
                for r in 0..<4 {
                    #expect(Array(whole[(r * total + column)..<(r * total + column + layer.outputs)]).map(\.bitPattern)
                            == Array(alone[(r * layer.outputs)..<((r + 1) * layer.outputs)]).map(\.bitPattern), "row \(r), column \(column)")
                }
                column += layer.outputs
            }
            // An output one value short is refused before anything is written through its pointer.
            var short = [Float](repeating: 0, count: 4 * total - 1)
            #expect(throws: QGEMMError(.bufferTooSmall, "")) {
                try x.withUnsafeBufferPointer { xs in
                    try short.withUnsafeMutableBufferPointer { try stacked(xs, rows: 4, into: $0, workspace: &workspace, parts: &parts, threads: 2) }
                }
            }
        }
        // Weights run as one call only where each channel then computes what it computes alone.
        let part = checkpoint.weights.layers[1].key
        func weights(bias: Bool = true, activations: Int4Weights.Activations = .int8, group: Int = 32) throws -> Int4Weights {
            try Int4Weights(quantizing: part.weight, outputChannels: part.outputs, inputChannels: part.inputs, groupSize: group,
                            bias: bias ? part.bias : nil, activations: activations)
        }
        #expect(try Int4Weights.stacked([weights(), weights(bias: false)]) == nil)
        #expect(try Int4Weights.stacked([weights(), weights(activations: .uint8)]) == nil)
        #expect(try Int4Weights.stacked([weights(), weights(group: 64)]) == nil)
        #expect(try Int4Weights.stacked([weights(), try Int4Weights(quantizing: part.weight, outputChannels: part.outputs, inputChannels: part.inputs,
                                                                    groupSize: 32, bias: part.bias,
                                                                    smoothing: try Smoothing(factors: [Float](repeating: 2, count: part.inputs)))]) == nil)
        let both = try #require(try Int4Weights.stacked([weights(activations: .uint8), weights(activations: .uint8)]))
        let x = (0..<(2 * part.inputs)).map { Float(($0 * 31) % 17) / 8 - 1 }
        let alone = try weights(activations: .uint8)(x, rows: 2), together = try both(x, rows: 2)
        for r in 0..<2 {
            let n = part.outputs
            let first: [Float] = Array(together[(r * 2 * n)..<(r * 2 * n + n)]), second: [Float] = Array(together[(r * 2 * n + n)..<(r * 2 * n + 2 * n)])
            let own: [Float] = Array(alone[(r * n)..<((r + 1) * n)])
            #expect(first == own && second == own)
        }
        // A 4-bit encoder with absMax scales (fused Q, K, V, nothing calibrated) has nothing to save.
        let unsaved = FileManager.default.temporaryDirectory.appendingPathComponent("calibrated-\(UUID().uuidString)")
        #expect(throws: QGEMMError.self) {
            try SentenceEncoder(checkpoint: checkpoint, recipe: { _ in .int4(groupSize: 32, scales: .absMax) }, calibration: nil)
                .saveLayers(to: unsaved)
        }
        #expect(!FileManager.default.fileExists(atPath: unsaved.path))
    }

    /// The study's embeddings are the encoder's own, and its per-layer SQNR
    /// orders the recipes as expected: Float layers exact (up to how OpenBLAS
    /// splits the fused Q, K, V), dynamic per-row above 30 dB on every layer.
    @Test func studyMeasuresEveryLayer() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let float = try AccuracyStudy(label: "float", checkpoint: checkpoint, recipe: { _ in .float }, calibration: nil,
                                      evaluation: Self.probe)
        #expect(float.layerSQNR.count == 36 && float.layerSQNR.values.allSatisfy { $0 > 100 })
        let dynamic = try AccuracyStudy(label: "dynamic", checkpoint: checkpoint, recipe: { _ in .dynamic(.perRow) },
                                        calibration: nil, evaluation: Self.probe)
        #expect(dynamic.embeddings == (try SentenceEncoder(checkpoint: checkpoint, precision: .int8(.perRow)).embed(Self.probe)))
        #expect(dynamic.layerSQNR.count == 36 && dynamic.layerSQNR.values.allSatisfy { $0 > 30 && $0.isFinite })
        #expect(dynamic.calibrationSQNR.isEmpty && dynamic.modes.values.allSatisfy { $0 == "dynamic" })
        let inputs = try CalibrationInputs(checkpoint: checkpoint, sentences: Self.samples)
        let mixed = try AccuracyStudy(label: "mixed", checkpoint: checkpoint,
                                      recipe: { $0.hasSuffix("output.dense") && !$0.contains("attention") ? .dynamic(.perRow)
                                                                 : .calibrated(.staticInput, .mse, smoothingAlpha: nil) },
                                      calibration: inputs, evaluation: Self.probe)
        #expect(mixed.calibrationSQNR.count == 30 && mixed.calibrationSQNR.values.allSatisfy { $0 > 20 && $0.isFinite })
        #expect(mixed.modes["4.output.dense"] == "dynamic" && mixed.modes["4.intermediate.dense"] == "static-input")
        #expect(float.layerSQNRAgainstInt8.isEmpty && dynamic.layerSQNRAgainstInt8.isEmpty && mixed.layerSQNRAgainstInt8.isEmpty)
        // Layer 0 with 4-bit weights (query, key and value in one call), the rest dynamic: only layer 0 is
        // measured against int8 as well.
        let int4 = try AccuracyStudy(label: "int4", checkpoint: checkpoint,
                                     recipe: { $0.hasPrefix("0.") ? .int4(groupSize: 32, scales: .absMax) : .dynamic(.perRow) },
                                     calibration: nil, evaluation: Self.probe)
        #expect(Set(int4.layerSQNRAgainstInt8.keys) == Set(SentenceEncoder.linearNames(layer: 0)))
        #expect(int4.layerSQNRAgainstInt8.values.allSatisfy { $0 > 10 && $0.isFinite }, "\(int4.layerSQNRAgainstInt8)")
    }

    /// The int8 comparison is against the int8 layer itself: that layer's own
    /// output is exact there (and not against Float), and a 4-bit layer's
    /// noise against it is its noise against Float give or take int8's, far
    /// smaller.
    @Test func tapMeasuresAgainstTheInt8Layer() throws {
        let checkpoint = try TestModel.checkpoint.get()
        let part = checkpoint.weights.layers[2].intermediate
        let (n, k, rows) = (part.outputs, part.inputs, 5)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let x: [Float] = (0..<rows * k).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23) * 3
        }
        let int8 = try QuantizedLinear(weights: part.weight, outputChannels: n, inputChannels: k, bias: part.bias,
                                       mode: .dynamic(.perRow))
        let int4 = try QuantizedLinear(weights: part.weight, outputChannels: n, inputChannels: k, bias: part.bias,
                                       mode: .int4Weights(groupSize: 32))
        for (layer, exact) in [(int8, true), (int4, false)] {
            let tap = LinearTap(keepInputs: false, reference: ["l": part], int8Reference: ["l": int8])
            try tap.record(["l"], input: x, rows: rows, k: k, output: try layer(x, rows: rows), outputs: n)
            let againstFloat = try #require(tap.sqnr["l"]), againstInt8 = try #require(tap.sqnrAgainstInt8["l"])
            #expect(againstFloat.isFinite && againstFloat > 10)
            if exact {
                #expect(againstInt8 == .infinity)
            } else {
                #expect(againstInt8.isFinite && abs(againstInt8 - againstFloat) < 1, "\(againstInt8) against \(againstFloat) dB")
            }
        }
        let wrong = try QuantizedLinear(weights: Array(part.weight.prefix(n * (k - 8))), outputChannels: n, inputChannels: k - 8,
                                        mode: .dynamic(.perRow))
        let tap = LinearTap(keepInputs: false, reference: ["l": part], int8Reference: ["l": wrong])
        #expect(throws: QGEMMError.self) {
            try tap.record(["l"], input: x, rows: rows, k: k, output: try int8(x, rows: rows), outputs: n)
        }
    }
}
