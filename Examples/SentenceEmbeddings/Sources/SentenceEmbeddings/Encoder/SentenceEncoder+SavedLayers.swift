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
    /// calibrated can be saved; dynamic and Float layers have nothing to keep.
    /// Every layer is written beside its place first (`<name>.safetensors.partial`,
    /// a fresh file: a link of that name is removed, not written through)
    /// and renamed into it only once all are written, so a save that fails
    /// while writing (a full disk) removes its partial files and leaves the
    /// folder's earlier layers as they were. Only a rename that fails (a
    /// folder in a layer's place) can leave old and new layers together; its
    /// error says how many were put in place.
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
        let partial = names.map { Self.layerFile(folder, $0).appendingPathExtension("partial") }
        // Whether `file` is itself (not what a link points to) of `type`.
        func isItself(_ file: URL, _ type: mode_t) -> Bool {
            var info = stat()
            return lstat(file.path, &info) == 0 && info.st_mode & S_IFMT == type
        }
        // Only files this save made are removed (not, say, a folder in the way).
        func removeFiles(_ files: some Sequence<URL>) {
            for file in files where isItself(file, S_IFREG) { unlink(file.path) }
        }
        var written: [URL] = []
        do {
            for (name, file) in zip(names, partial) {
                // A stale link of this name is removed, so the write makes a new file here.
                if isItself(file, S_IFLNK) { unlink(file.path) }
                written.append(file) // before the write: a failed write may leave a file cut short
                try calibratedLayers[name]?.save(to: file)
            }
        } catch {
            removeFiles(written)
            throw error
        }
        for (i, (name, file)) in zip(names, partial).enumerated() where rename(file.path, Self.layerFile(folder, name).path) != 0 {
            let reason = String(cString: strerror(errno))
            removeFiles(partial[i...])
            throw QGEMMError(.file, "\(Self.layerFile(folder, name).path): cannot put the layer in place (\(reason)); "
                             + "\(i) of \(names.count) new layers were, the others are the folder's old ones")
        }
    }

    /// Refuses a saved layer that is not this checkpoint's layer `name`: one
    /// file copied over another of the same shape (query over key), a layer
    /// of another checkpoint, or a damaged one would otherwise load without a
    /// word. Its Float bias must be there and be the checkpoint's, bit for bit
    /// (every layer of the checkpoint has one, and ``saveLayers(to:)`` writes
    /// it), and every one of its weights must be the checkpoint's to within
    /// int8 rounding, half a step (``weightDifference(_:_:)`` at most
    /// ``sameLayerMaxSteps``).
    static func checkSameLayer(_ q: QuantizedLinear, _ part: BertWeights.Linear, name: String, file: URL) throws {
        guard let bias = q.packed?.floatBias, bias.map(\.bitPattern) == part.bias.map(\.bitPattern) else {
            throw QGEMMError(.invalidValue, "\(file.path): its bias is missing or not \(name)'s in this checkpoint; "
                             + "a file of another layer or checkpoint?")
        }
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

    /// An encoder whose Linear layers are read from `folder`
    /// (``saveLayers(to:)``), the rest from the checkpoint. Each file must hold
    /// a static or static-input layer of its layer's shape; a missing or bad
    /// file is a ``QGEMMError`` naming it.
    public convenience init(checkpoint: Checkpoint, savedLayers folder: URL) throws {
        var loaded: [String: QuantizedLinear] = [:]
        for (l, layer) in checkpoint.weights.layers.enumerated() {
            for (name, part) in zip(Self.linearNames(layer: l), layer.linears) {
                let file = Self.layerFile(folder, name)
                let q: QuantizedLinear
                do { q = try QuantizedLinear(contentsOf: file) } catch let e as QGEMMError {
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
                case .static, .staticInput: break
                case .dynamic, .int4Weights:
                    throw QGEMMError(.incompatibleParameters, "\(file.path): a \(q.mode.name) layer; saved layers are calibrated (static or static-input)")
                }
                try Self.checkSameLayer(q, part, name: name, file: file)
                loaded[name] = q
            }
        }
        try self.init(checkpoint: checkpoint, loaded: loaded)
    }
}
