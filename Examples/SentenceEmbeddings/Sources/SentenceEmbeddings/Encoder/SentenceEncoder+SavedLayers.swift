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
    /// Every layer is written beside its place first (`<name>.safetensors.partial`)
    /// and renamed into it only once all are written, so a save that fails
    /// (a full disk) leaves the folder's earlier layers as they were, never a
    /// mix of old and new.
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
        var written: [URL] = []
        do {
            for (name, file) in zip(names, partial) {
                try calibratedLayers[name]?.save(to: file)
                written.append(file)
            }
        } catch {
            // Only what this save wrote (not, say, a folder in the way).
            for file in written { try? FileManager.default.removeItem(at: file) }
            throw error
        }
        for (name, file) in zip(names, partial) where rename(file.path, Self.layerFile(folder, name).path) != 0 {
            let reason = String(cString: strerror(errno))
            throw QGEMMError(.file, "\(Self.layerFile(folder, name).path): cannot put the layer in place (\(reason))")
        }
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
                loaded[name] = q
            }
        }
        try self.init(checkpoint: checkpoint, loaded: loaded)
    }
}
