import Foundation
internal import CQGEMM

/// Saving and loading ``Int4Weights`` as safetensors.
///
/// Tensors (little-endian, row-major):
///
/// | name | dtype | shape | holds |
/// | --- | --- | --- | --- |
/// | `weight_packed` | U8 | [N, ⌈K/2⌉] | the int4 values, two per byte: byte j of row n holds `q_W[n][2j] + 8` in its low nibble and `q_W[n][2j+1] + 8` in its high one (8, which is 0, past K) |
/// | `weight_scale` | F16 | [N, ⌈K/G⌉] | `S_W[n][g]` (binary16, as stored) |
/// | `bias` | F32 | [N] | the bias, when the layer has one |
/// | `smoothing` | F32 | [K] | the factors `s_j`, when the weights have them (the values are then those of `W·diag(s)`) |
///
/// `__metadata__` (strings): `format` = `swift-qgemm.Int4Weights`, `version` = `1`,
/// `input_channels` (K), `group_size` (G), and `activations` = `uint8` for
/// weights whose calls quantize rows to uint8 with zero points
/// (``Int4Weights/Activations``; absent for `int8`, so files of
/// symmetric-activation weights read as before). The byte order of `weight_packed` is
/// that of the values, not of any kernel's layout, so the file does not change
/// when a kernel's layout does.
///
/// Loading checks every name, dtype, shape, value and key (a key it does not
/// read is refused too), and refuses a bad
/// file with a ``QGEMMError`` naming the problem; loaded weights give the same
/// bits as the weights that were saved.
extension Int4Weights {
    /// The `format` value in `__metadata__` that marks an Int4Weights file:
    /// `"swift-qgemm.Int4Weights"`.
    public static let safeTensorsFormat = "swift-qgemm.Int4Weights"

    /// The weights as a safetensors file (see the extension's documentation).
    public func safeTensors() throws -> SafeTensorsFile {
        let n = outputChannels, k = inputChannels, rowBytes = (k + 1) / 2
        let q = values()
        var nibbles = [UInt8](repeating: 0x88, count: n * rowBytes)
        for row in 0..<n {
            for col in 0..<k {
                let u = UInt8(Int(q[row * k + col]) + 8)
                let at = row * rowBytes + col / 2
                nibbles[at] = col % 2 == 0 ? (nibbles[at] & 0xF0) | u : (nibbles[at] & 0x0F) | (u << 4)
            }
        }
        var tensors: [String: SafeTensorsFile.Tensor] = [
            "weight_packed": try .init(dtype: .uint8, shape: [n, rowBytes], bytes: nibbles),
            "weight_scale": try .init(dtype: .float16, shape: [n, groupCount],
                                      bytes: scales.flatMap { v -> [UInt8] in
                                          let h = qg_f16_from_f32(v)
                                          return [UInt8(h & 0xFF), UInt8(h >> 8)]
                                      }),
        ]
        if let b = bias { tensors["bias"] = try .init(float32: b, shape: [n]) }
        if let sm = smoothing { tensors["smoothing"] = try .init(float32: sm.factors, shape: [k]) }
        var meta = ["format": Self.safeTensorsFormat, "version": "1", "input_channels": "\(k)", "group_size": "\(groupSize)"]
        if activations != .int8 { meta["activations"] = activations.rawValue }
        return SafeTensorsFile(tensors: tensors, metadata: meta)
    }

    /// Writes ``safeTensors()`` to `url` (as ``SafeTensorsFile/write(to:)``:
    /// a regular file already there is replaced whole, in one rename, or kept
    /// whole if the write fails).
    public func save(to url: URL) throws { try safeTensors().write(to: url) }

    /// Loads weights saved by ``save(to:)`` (or written to the same layout by
    /// another program). Every error's message begins with the file's path.
    public convenience init(contentsOf url: URL) throws {
        let file = try SafeTensorsFile(contentsOf: url)
        // The file's errors name it already; the layer's are named here.
        do { try self.init(safeTensors: file) } catch let e as QGEMMError { throw e.placed(url.path) }
    }

    /// Weights from a parsed safetensors file; see the extension's documentation.
    public convenience init(safeTensors file: SafeTensorsFile) throws {
        let fail = try file.layerFileRefusal(kind: "Int4Weights", format: Self.safeTensorsFormat)
        try file.refuseUnknownMetadataKeys(Self.metadataKeys, of: "an Int4Weights file", fail)
        try self.init(safeTensors: file, refusal: fail)
    }

    /// The `__metadata__` keys of the file besides `format` and `version`.
    static let metadataKeys: Set<String> = ["input_channels", "group_size", "activations"]

    /// The tensors and keys above from a file whose format and version were
    /// checked by its loader (this type's, or ``QuantizedLinear``'s in int4
    /// mode); `fail` makes that loader's refusals.
    convenience init(safeTensors file: SafeTensorsFile, refusal fail: (String) -> QGEMMError) throws {
        let meta = file.metadata
        func integer(_ key: String) throws -> Int {
            guard let text = meta[key] else { throw fail("__metadata__ has no '\(key)'") }
            guard let v = Int(text), v >= 1 else { throw fail("\(key) '\(text)' is not a positive integer") }
            return v
        }
        let k = try integer("input_channels"), group = try integer("group_size")
        var activations = Activations.int8
        if let text = meta["activations"] {
            guard let a = Activations(rawValue: text) else {
                throw fail("activations '\(text)' is not \(Activations.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            activations = a
        }
        let known: Set<String> = ["weight_packed", "weight_scale", "bias", "smoothing"]
        if let extra = file.tensors.keys.sorted().first(where: { !known.contains($0) }) { throw fail("unknown tensor '\(extra)'") }
        guard let w = file.tensors["weight_packed"] else { throw fail("no 'weight_packed' tensor") }
        let rowBytes = k / 2 + k % 2
        guard w.dtype == .uint8, w.shape.count == 2, w.shape[0] >= 1, w.shape[1] == rowBytes else {
            throw fail("'weight_packed' is \(w.dtype.rawValue) \(w.shape), expected U8 [N, \(rowBytes)] for K = \(k)")
        }
        let n = w.shape[0]
        guard Int4Weights.isValidGroupSize(group) else {
            throw fail("group_size \(group) is not a multiple of 8 from 8 to 4096")
        }
        let groups = (k + group - 1) / group
        guard let s = file.tensors["weight_scale"] else { throw fail("no 'weight_scale' tensor") }
        guard s.dtype == .float16, s.shape == [n, groups], let scales = s.float16Values else {
            throw fail("'weight_scale' is \(s.dtype.rawValue) \(s.shape), expected F16 [\(n), \(groups)]")
        }
        var bias: [Float]? = nil
        if let b = file.tensors["bias"] {
            guard b.dtype == .float32, b.shape == [n], let values = b.float32Values else {
                throw fail("'bias' is \(b.dtype.rawValue) \(b.shape), expected F32 [\(n)]")
            }
            bias = values
        }
        var smoothing: Smoothing? = nil
        if let t = file.tensors["smoothing"] {
            guard t.dtype == .float32, t.shape == [k], let factors = t.float32Values else {
                throw fail("'smoothing' is \(t.dtype.rawValue) \(t.shape), expected F32 [\(k)]")
            }
            do { smoothing = try Smoothing(factors: factors) } catch { throw fail("\(error)") }
        }
        // The values a byte each, beside the file's nibbles: twice its
        // weights' bytes, refused (as memory, not as a bad file) where
        // allocating them would trap. n·k ≤ 2·the tensor's bytes: no overflow.
        try checkResultFits(n * k, of: Int8.self, holding: w.bytes.count, "the \(n)×\(k) 4-bit values, a byte each")
        var values = [Int8](repeating: 0, count: n * k)
        for row in 0..<n {
            for col in 0..<rowBytes {
                let byte = w.bytes[row * rowBytes + col]
                values[row * k + 2 * col] = Int8(byte & 0x0F) - 8
                if 2 * col + 1 < k {
                    values[row * k + 2 * col + 1] = Int8(byte >> 4) - 8
                } else if byte >> 4 != 8 {
                    throw fail("row \(row)'s last byte holds \(Int(byte >> 4) - 8) past K = \(k) (must be 8, that is 0)")
                }
            }
        }
        do {
            try self.init(values: values, scales: scales, outputChannels: n, inputChannels: k, groupSize: group, bias: bias,
                          smoothing: smoothing, activations: activations)
        } catch {
            throw fail("\(error)")
        }
    }
}
