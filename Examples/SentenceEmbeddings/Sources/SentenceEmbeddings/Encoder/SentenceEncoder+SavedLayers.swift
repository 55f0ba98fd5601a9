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
    /// file copied over another of the same shape (query over key), or a
    /// layer of another checkpoint, would otherwise load without a word. Its
    /// Float bias must be there and be the checkpoint's, bit for bit (every
    /// layer of the checkpoint has one, and ``saveLayers(to:)`` writes it), and
    /// its weights must be the checkpoint's to within int8 rounding
    /// (``weightDifference(_:_:)`` at most 0.2; the tests measure true layers,
    /// smoothed or not, and other layers' weights).
    static func checkSameLayer(_ q: QuantizedLinear, _ part: BertWeights.Linear, name: String, file: URL) throws {
        guard let bias = q.packed?.floatBias, bias.map(\.bitPattern) == part.bias.map(\.bitPattern) else {
            throw QGEMMError(.invalidValue, "\(file.path): its bias is missing or not \(name)'s in this checkpoint; "
                             + "a file of another layer or checkpoint?")
        }
        let relative = try weightDifference(q, part)
        guard relative <= 0.2 else {
            throw QGEMMError(.invalidValue, "\(file.path): its weights differ from \(name)'s in this checkpoint by \(relative) (relative); "
                             + "a file of another layer or checkpoint?")
        }
    }

    /// The relative RMS difference between a saved layer's weights, taken
    /// back from int8, and a checkpoint layer's, over 16 evenly spaced output
    /// channels; 0 for a layer without int8 weights. Compared where the layer
    /// quantized them, after smoothing (W·diag(s)), so that a true layer
    /// differs by int8 rounding alone, whatever the smoothing.
    static func weightDifference(_ q: QuantizedLinear, _ part: BertWeights.Linear) throws -> Double {
        guard let packed = q.packed else { return 0 }
        let factors = q.smoothing?.factors
        var difference = 0.0, norm = 0.0
        for n in stride(from: 0, to: part.outputs, by: Swift.max(1, part.outputs / 16)) {
            let scale = Double(packed.weightScales[packed.granularity == .perChannel ? n : 0])
            for k in 0..<part.inputs {
                let taken = Double(try packed.weight(outputChannel: n, input: k)) * scale
                let w = Double(part.weight[n * part.inputs + k]) * Double(factors?[k] ?? 1)
                difference += (taken - w) * (taken - w)
                norm += w * w
            }
        }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
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
