import Foundation
import QGEMM

/// `layers.json` in a folder of saved layers: for each layer, a fingerprint
/// of its file's contents and one of the checkpoint layer it was made from
/// (its Float weights and bias). 4-bit layers need it: rounding to 16 values,
/// with clipped scales and GPTQ-style rounding, bounds no weight's distance
/// from the checkpoint's, so the file cannot be checked against the
/// checkpoint as an int8 one is (half a step per weight); the fingerprints
/// tell a damaged file, another layer's, one of another checkpoint or one
/// left from an earlier save instead. Int8 layers are checked against it
/// too where it is there (folders saved before it existed have none).
///
/// The fingerprint is 64-bit FNV-1a: over a file's tensors in name order
/// (each one's name, dtype, shape and bytes) and then its metadata in key
/// order (each key and value), so it does not depend on how a writer lays
/// out the header; over a checkpoint layer's weights, then its bias, as
/// Float bits in the machine's byte order (little-endian on x86-64 and
/// arm64). It finds accidents, not forgeries.
struct SavedLayersManifest: Equatable {
    struct Entry: Equatable {
        /// The fingerprint of the layer's `.safetensors` file's contents.
        var file: String
        /// The fingerprint of the checkpoint layer's weights and bias.
        var checkpoint: String
    }

    static let fileName = "layers.json"
    static let format = "swift-qgemm SentenceEmbeddings saved layers"
    /// The most bytes a manifest is read from (36 entries take about 4 KB).
    static let maxBytes = 1 << 20

    var layers: [String: Entry]

    static func fingerprint(_ bytes: UnsafeRawBufferPointer, _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = start
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func text(_ h: UInt64) -> String {
        let hex = String(h, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The fingerprint of a safetensors file's contents.
    static func fileFingerprint(_ file: SafeTensorsFile) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        // Each string with its length in front, so that no two lists of them
        // give the same bytes.
        func add(_ string: String) {
            let utf8 = Array(string.utf8)
            h = withUnsafeBytes(of: UInt64(utf8.count).littleEndian) { fingerprint($0, h) }
            h = utf8.withUnsafeBytes { fingerprint($0, h) }
        }
        for (name, tensor) in file.tensors.sorted(by: { $0.key < $1.key }) {
            add(name)
            add(tensor.dtype.rawValue)
            add(tensor.shape.map(String.init).joined(separator: ","))
            h = withUnsafeBytes(of: UInt64(tensor.bytes.count).littleEndian) { fingerprint($0, h) }
            h = tensor.bytes.withUnsafeBytes { fingerprint($0, h) }
        }
        for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) {
            add(key)
            add(value)
        }
        return text(h)
    }

    /// The fingerprint of a checkpoint layer: its weights, then its bias.
    static func checkpointFingerprint(_ part: BertWeights.Linear) -> String {
        let h = part.weight.withUnsafeBytes { fingerprint($0) }
        return text(part.bias.withUnsafeBytes { fingerprint($0, h) })
    }

    func json() throws -> Data {
        let entries = layers.mapValues { ["file": $0.file, "checkpoint": $0.checkpoint] }
        return try JSONSerialization.data(withJSONObject: ["format": Self.format, "version": 1, "layers": entries] as [String: Any],
                                          options: [.prettyPrinted, .sortedKeys])
    }

    /// The folder's manifest, nil when nothing has its name; anything else
    /// there (a link to nothing, a folder, a damaged file) is a
    /// ``QGEMMError`` naming it.
    static func read(folder: URL) throws -> SavedLayersManifest? {
        let url = folder.appendingPathComponent(fileName)
        var info = stat()
        guard lstat(url.path, &info) == 0 else { return nil }
        let json = try JSONFile.object(try JSONFile.read(url, limit: maxBytes), file: url.path)
        guard json["format"] as? String == format, JSONFile.wholeNumber(json["version"] as Any) == 1,
              let layers = json["layers"] as? [String: Any] else {
            throw QGEMMError(.file, "\(url.path): not a manifest of saved layers (format \"\(format)\", version 1, layers)")
        }
        var entries: [String: Entry] = [:]
        for (name, value) in layers {
            guard let entry = value as? [String: Any], let file = entry["file"] as? String, let checkpoint = entry["checkpoint"] as? String,
                  entry.count == 2 else {
                throw QGEMMError(.file, "\(url.path): layer \(name): an entry is {\"file\": …, \"checkpoint\": …}")
            }
            entries[name] = Entry(file: file, checkpoint: checkpoint)
        }
        return SavedLayersManifest(layers: entries)
    }
}
