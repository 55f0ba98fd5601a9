import Foundation
import QGEMM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SentenceEncoder {
    /// The file of layer `name` in a folder of saved layers.
    static func layerFile(_ folder: URL, _ name: String) -> URL {
        folder.appendingPathComponent("\(name).safetensors")
    }

    /// Writes every calibrated layer as `<name>.safetensors` into `folder`
    /// (created if needed), for ``init(checkpoint:savedLayers:)``: calibrate
    /// once, load many times. Only an encoder whose Linear layers are all
    /// calibrated (static or static-input int8, or 4-bit with scales searched
    /// on the calibration inputs, ``LayerRecipe/int4Searched(groupSize:errorCompensation:activations:)``)
    /// can be saved; dynamic and Float layers have nothing to keep.
    /// Beside them, `layers.json` (SavedLayersManifest) holds a fingerprint
    /// of each file's contents and of the checkpoint layer it was made from.
    /// Every file is written beside its place first (`<name>.safetensors.partial`,
    /// a fresh file: whatever else has that name, a link say, is removed, not
    /// written through) and renamed into it only once all are written, the
    /// manifest first, so a save that fails while writing (a full disk)
    /// removes its partial files and leaves the folder's earlier layers as
    /// they were. A rename that fails (a folder in a layer's place) or a
    /// save cut short among the renames leaves old and new layers together,
    /// which the new manifest then refuses on load; the error says how many
    /// were put in place.
    public func saveLayers(to folder: URL) throws {
        let names = (0..<layers.count).flatMap { Self.linearNames(layer: $0) }
        let missing = names.filter { calibratedLayers[$0] == nil }
        guard missing.isEmpty else {
            throw QGEMMError(.invalidArgument, "only calibrated layers are saved; \(missing.count) of \(names.count) are not, first \(missing[0])")
        }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw QGEMMError(.file, "\(folder.path): cannot create the folder: \(error.localizedDescription)")
        }
        let manifestFile = folder.appendingPathComponent(SavedLayersManifest.fileName)
        let partial = names.map { Self.layerFile(folder, $0).appendingPathExtension("partial") }
        let manifestPartial = manifestFile.appendingPathExtension("partial")
        // Whether `file` is itself (not what a link points to) of `type`.
        func isItself(_ file: URL, _ type: mode_t) -> Bool {
            var info = stat()
            return lstat(file.path, &info) == 0 && info.st_mode & S_IFMT == type
        }
        // Only files this save made are removed (not, say, a folder in the way).
        func removeFiles(_ files: some Sequence<URL>) {
            for file in files where isItself(file, S_IFREG) { unlink(file.path) }
        }
        // Whatever has a partial file's name and is not a folder (a stale link,
        // a pipe, a file linked elsewhere) is removed, so the write makes a new file.
        func clear(_ file: URL) {
            var info = stat()
            if lstat(file.path, &info) == 0, info.st_mode & S_IFMT != S_IFDIR { unlink(file.path) }
        }
        var written: [URL] = [], manifest = SavedLayersManifest(layers: [:])
        do {
            for (name, file) in zip(names, partial) {
                guard let layer = calibratedLayers[name], let source = calibratedSources[name] else { continue }
                clear(file)
                written.append(file) // before the write: a failed write may leave a file cut short
                let contents = try layer.safeTensors()
                try contents.write(to: file)
                manifest.layers[name] = .init(file: SavedLayersManifest.fileFingerprint(contents), checkpoint: source)
            }
            clear(manifestPartial)
            written.append(manifestPartial)
            do { try manifest.json().write(to: manifestPartial, options: .withoutOverwriting) } catch {
                throw QGEMMError(.file, "\(manifestPartial.path): cannot write: \(error.localizedDescription)")
            }
        } catch {
            removeFiles(written)
            throw error
        }
        // The manifest first: a folder left with old and new layers side by side is refused by it.
        if rename(manifestPartial.path, manifestFile.path) != 0 {
            let reason = String(cString: strerror(errno))
            removeFiles(partial + [manifestPartial])
            throw QGEMMError(.file, "\(manifestFile.path): cannot put it in place (\(reason)); the folder's layers are as they were")
        }
        for (i, (name, file)) in zip(names, partial).enumerated() where rename(file.path, Self.layerFile(folder, name).path) != 0 {
            let reason = String(cString: strerror(errno))
            removeFiles(partial[i...])
            throw QGEMMError(.file, "\(Self.layerFile(folder, name).path): cannot put the layer in place (\(reason)); "
                             + "\(i) of \(names.count) new layers were, the others are the folder's old ones, "
                             + "which its new \(SavedLayersManifest.fileName) refuses on load")
        }
    }

    /// Refuses a saved layer that is not this checkpoint's layer `name`: one
    /// file copied over another of the same shape (query over key), a layer
    /// of another checkpoint, or a damaged one would otherwise load without a
    /// word. Its Float bias must be there and be the checkpoint's, bit for bit
    /// (every layer of the checkpoint has one, and ``saveLayers(to:)`` writes
    /// it). An int8 layer's every weight must be the checkpoint's to within
    /// int8 rounding, half a step (``weightDifference(_:_:)`` at most
    /// ``sameLayerMaxSteps``). A 4-bit layer's weights are checked through
    /// the folder's `layers.json` instead (SavedLayersManifest).
    static func checkSameLayer(_ q: QuantizedLinear, _ part: BertWeights.Linear, name: String, file: URL) throws {
        guard let bias = q.packed?.floatBias ?? q.int4Weights?.bias, bias.map(\.bitPattern) == part.bias.map(\.bitPattern) else {
            throw QGEMMError(.invalidValue, "\(file.path): its bias is missing or not \(name)'s in this checkpoint; "
                             + "a file of another layer or checkpoint?")
        }
        // A 4-bit layer's weights are checked through the folder's manifest
        // (SavedLayersManifest): rounding to 16 values bounds none of them.
        if q.int4Weights != nil { return }
        let (steps, n, k) = try weightDifference(q, part)
        guard steps <= sameLayerMaxSteps else {
            throw QGEMMError(.invalidValue, "\(file.path): its weight [\(n), \(k)] differs from \(name)'s in this checkpoint "
                             + "by \(steps) quantization steps (int8 rounding gives at most 0.5); "
                             + "a damaged file, or one of another layer or checkpoint?")
        }
    }

    /// How far a saved layer's weight may lie from the checkpoint's, in
    /// quantization steps: half a step of rounding, and the Float roundings
    /// of the smoothing and the division on the way (a few millionths of a step).
    static let sameLayerMaxSteps = 0.5 + 1.0 / 1024

    /// The largest difference between a saved layer's weights, taken back
    /// from int8, and a checkpoint layer's, in steps of the layer's weight
    /// scale, over every weight, and where it is (output channel, input);
    /// 0 for a layer without int8 weights. Compared where the layer quantized
    /// them, after smoothing (W·diag(s)): the weights' scales are their
    /// absolute maxima over 127, so a true layer's weights each lie within
    /// half a step of the checkpoint's, whatever the smoothing or granularity,
    /// and a damaged weight or scale does not.
    static func weightDifference(_ q: QuantizedLinear, _ part: BertWeights.Linear) throws -> (steps: Double, output: Int, input: Int) {
        guard let packed = q.packed else { return (0, 0, 0) }
        try checkShape(q.outputChannels, q.inputChannels, part)
        let factors = q.smoothing?.factors
        var worst = (steps: 0.0, output: 0, input: 0)
        for n in 0..<part.outputs {
            let scale = Double(packed.weightScales[packed.granularity == .perChannel ? n : 0])
            for k in 0..<part.inputs {
                let taken = Double(try packed.weight(outputChannel: n, input: k)) * scale
                let w = Double(part.weight[n * part.inputs + k]) * Double(factors?[k] ?? 1)
                let steps = scale > 0 ? abs(taken - w) / scale : (taken == w ? 0 : .infinity)
                // `!(a <= b)` so that a NaN counts as the worst.
                if !(steps <= worst.steps) { worst = (steps, n, k) }
            }
        }
        return worst
    }

    /// Refuses a layer of another shape than the checkpoint's `part`: the
    /// comparison reads one by the other's indices.
    static func checkShape(_ outputs: Int, _ inputs: Int, _ part: BertWeights.Linear) throws {
        guard outputs == part.outputs, inputs == part.inputs else {
            throw QGEMMError(.invalidShape, "a layer of \(outputs)×\(inputs) compared with one of \(part.outputs)×\(part.inputs)")
        }
    }

    /// What kinds of layer the encoder's calibrated (or loaded) layers are,
    /// with how many of each: "36 int4Weights (group 32, int8 rows)", say.
    public var savedLayersSummary: String {
        var counts: [String: Int] = [:]
        for q in calibratedLayers.values {
            let kind: String
            if let w = q.int4Weights {
                kind = "int4Weights (group \(w.groupSize), \(w.activations.rawValue) rows\(w.smoothing == nil ? "" : ", smoothed"))"
            } else {
                kind = q.mode.name + (q.smoothing == nil ? "" : " (smoothed)")
            }
            counts[kind, default: 0] += 1
        }
        return counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }

    /// An encoder whose Linear layers are read from `folder`
    /// (``saveLayers(to:)``), the rest from the checkpoint. Each file must hold
    /// a static, static-input or 4-bit layer of its layer's shape; a missing or bad
    /// file is a ``QGEMMError`` naming it. Where the folder has a
    /// `layers.json` (``saveLayers(to:)`` writes one), every file must be the
    /// one it describes, made from this checkpoint's layer; 4-bit layers
    /// need it.
    public convenience init(checkpoint: Checkpoint, savedLayers folder: URL) throws {
        var loaded: [String: QuantizedLinear] = [:], sources: [String: String] = [:]
        let manifest = try SavedLayersManifest.read(folder: folder)
        let manifestPath = folder.appendingPathComponent(SavedLayersManifest.fileName).path
        for (l, layer) in checkpoint.weights.layers.enumerated() {
            for (name, part) in zip(Self.linearNames(layer: l), layer.linears) {
                let file = Self.layerFile(folder, name)
                let q: QuantizedLinear, contents: SafeTensorsFile
                do {
                    contents = try SafeTensorsFile(contentsOf: file)
                    q = try QuantizedLinear(safeTensors: contents)
                } catch let e as QGEMMError {
                    throw e.message.contains(file.path) ? e : QGEMMError(e.code, "\(file.path): \(e.message)")
                }
                guard q.inputChannels == part.inputs, q.outputChannels == part.outputs else {
                    throw QGEMMError(.invalidShape, "\(file.path): the layer is \(q.outputChannels)×\(q.inputChannels), "
                                     + "\(name) of this checkpoint is \(part.outputs)×\(part.inputs)")
                }
                switch q.mode {
                case .static(_, _, let activation) where activation != .none:
                    // The encoder's layers have no fused activation (GELU runs apart):
                    // a clamp would cut every output below it.
                    throw QGEMMError(.incompatibleParameters, "\(file.path): a layer with a fused \(activation) clamp; "
                                     + "the encoder's layers have none")
                case .static, .staticInput, .int4Weights: break
                case .dynamic:
                    throw QGEMMError(.incompatibleParameters, "\(file.path): a dynamic layer; saved layers are calibrated (static or static-input) "
                                     + "or have 4-bit weights")
                }
                try Self.checkSameLayer(q, part, name: name, file: file)
                sources[name] = SavedLayersManifest.checkpointFingerprint(part)
                if let manifest {
                    guard let entry = manifest.layers[name] else {
                        throw QGEMMError(.file, "\(manifestPath): no entry for \(name)")
                    }
                    guard SavedLayersManifest.fileFingerprint(contents) == entry.file else {
                        throw QGEMMError(.invalidValue, "\(file.path): not the file \(manifestPath) was saved with; "
                                         + "a damaged file, another layer's, or one of another save?")
                    }
                    guard entry.checkpoint == sources[name] else {
                        throw QGEMMError(.invalidValue, "\(file.path): made from another checkpoint's \(name) (\(manifestPath) says), "
                                         + "not this one's")
                    }
                } else if q.int4Weights != nil {
                    throw QGEMMError(.file, "\(file.path): a 4-bit layer, which is checked against the folder's \(SavedLayersManifest.fileName), "
                                     + "and \(folder.path) has none; save the layers again")
                }
                loaded[name] = q
            }
        }
        try self.init(checkpoint: checkpoint, loaded: loaded, sources: sources)
    }
}
