/// Structure-aware edits of a safetensors file: the header is read as JSON
/// and edited as JSON (keys, values, dtypes, shapes, byte ranges, metadata),
/// and half of the time the byte ranges are then laid out again to tile the
/// data, so that the edit gets past the container's checks to the layer
/// loader behind them.
public enum SafeTensorsMutator {
    public static let vocabulary = [
        "__metadata__", "weight", "weight_scale", "bias", "bias_quantized", "smoothing", "dtype", "shape", "data_offsets",
        "format", "version", "mode", "weight_granularity", "input_granularity", "input_type", "input_scale",
        "input_zero_point", "output_type", "output_scale", "output_zero_point", "activation", "rounding", "clamp_min",
        "clamp_max", "swift-qgemm.QuantizedLinear", "1", "2", "dynamic", "static", "staticInput", "perChannel", "perTensor",
        "perRow", "int8", "uint8", "none", "relu", "relu6", "singleRounding", "doubleRounding", "float",
        "int4Weights", "swift-qgemm.Int4Weights", "weight_packed", "input_channels", "group_size", "8", "16", "4096",
    ]
    static let dtypes = ["I8", "U8", "I32", "I64", "F16", "F32", "F64", "BF16", "I16", "BOOL", "i8", ""]

    static func itemSize(_ dtype: String) -> Int? {
        switch dtype {
        case "I8", "U8", "BOOL": 1
        case "F16", "BF16", "I16": 2
        case "I32", "F32": 4
        case "I64", "F64": 8
        default: nil
        }
    }

    public static func mutate(_ bytes: [UInt8], maxSize: Int, _ rng: inout FuzzRandom) -> [UInt8]? {
        guard bytes.count >= 8 else { return nil }
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        guard length >= 0, length <= bytes.count - 8, var header = JSONText.parse(bytes[8..<(8 + length)]) else { return nil }
        var data = Array(bytes[(8 + length)...])
        let generic = JSONMutator(vocabulary: vocabulary)
        for _ in 0...rng.below(3) {
            switch rng.below(3) {
            case 0: header = metadataEdit(header, generic, &rng)
            case 1: header = tensorEdit(header, &rng)
            default: header = generic.mutate(header, &rng)
            }
        }
        if rng.oneIn(2) { retile(&header, &data, &rng) }
        var text = Array(header.text.utf8)
        if !rng.oneIn(8) { while text.count % 8 != 0 { text.append(0x20) } }
        let out = withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text + data
        return out.count <= maxSize ? out : nil
    }

    /// An edit of one `__metadata__` entry: dropped, renamed, duplicated, given
    /// another value, or a known key added. The loader reads its settings from
    /// here, and a file that a person edited by hand differs here first.
    static func metadataEdit(_ header: JSONText, _ generic: JSONMutator, _ rng: inout FuzzRandom) -> JSONText {
        guard case .object(var entries) = header, let m = entries.firstIndex(where: { $0.key == "__metadata__" }),
              case .object(var meta) = entries[m].value else { return generic.mutate(header, &rng) }
        let values = meta.map(\.value)
        if meta.isEmpty || rng.oneIn(8) {
            meta.append((rng.pick(vocabulary), .string(rng.pick(vocabulary))))
        } else {
            let i = rng.below(meta.count)
            switch rng.below(7) {
            case 0: meta.remove(at: i)
            case 1: meta[i].key = generic.newKey(meta[i].key, &rng)
            case 2: meta.insert((meta[i].key, .string(rng.pick(JSONMutator.interestingStrings))), at: rng.below(meta.count + 1))
            case 3: meta[i].value = rng.pick(values)
            case 4: meta[i].value = .string(rng.pick(vocabulary))
            case 5: meta[i].value = .bare(rng.pick(JSONMutator.interestingBare))
            default: meta[i].value = .string(rng.pick(JSONMutator.interestingStrings))
            }
        }
        entries[m].value = .object(meta)
        return .object(entries)
    }

    /// An edit of one tensor's dtype, shape or byte range, or of the tensor's
    /// entry itself (dropped, renamed).
    static func tensorEdit(_ header: JSONText, _ rng: inout FuzzRandom) -> JSONText {
        guard case .object(var entries) = header else { return header }
        let tensors = entries.indices.filter { entries[$0].key != "__metadata__" }
        guard !tensors.isEmpty else { return header }
        let t = rng.pick(tensors)
        if rng.oneIn(6) {
            if rng.oneIn(2) { entries.remove(at: t) } else { entries[t].key = rng.pick(vocabulary) }
            return .object(entries)
        }
        guard case .object(var info) = entries[t].value else { return header }
        for j in info.indices {
            switch (info[j].key, info[j].value) {
            case ("dtype", _) where rng.oneIn(3):
                info[j].value = .string(rng.pick(dtypes))
            case ("shape", .array(var dims)) where rng.oneIn(2):
                switch rng.below(5) {
                case 0 where !dims.isEmpty: dims.remove(at: rng.below(dims.count))
                case 1: dims.insert(.bare(rng.pick(["1", "0", "2", "3"])), at: rng.below(dims.count + 1))
                case 2 where !dims.isEmpty:
                    let i = rng.below(dims.count)
                    let v = dims[i].integer ?? 1
                    dims[i] = .bare(String(rng.pick([v &+ 1, v &- 1, v &* 2, 0, 0 &- v, 1 << 31, 1 << 40, Int.max])))
                case 3 where dims.count >= 2: dims.swapAt(0, dims.count - 1)
                default: dims = dims.reversed()
                }
                info[j].value = .array(dims)
            case ("data_offsets", .array(var offsets)) where rng.oneIn(2) && offsets.count == 2:
                let d = rng.pick([1, -1, 4, -4, 8, 1 << 20])
                switch rng.below(3) {
                case 0: offsets[0] = .bare(String((offsets[0].integer ?? 0) &+ d))
                case 1: offsets[1] = .bare(String((offsets[1].integer ?? 0) &+ d))
                default: offsets.swapAt(0, 1)
                }
                info[j].value = .array(offsets)
            default: break
            }
        }
        entries[t].value = .object(info)
        return .object(entries)
    }

    /// Gives every tensor whose dtype and shape are readable a byte range of
    /// exactly its size, one after another in the order of their old ranges,
    /// and lays the data out to match (old bytes where they were, zeros
    /// where a tensor grew, a random tail byte at times).
    static func retile(_ header: inout JSONText, _ data: inout [UInt8], _ rng: inout FuzzRandom) {
        guard case .object(var entries) = header else { return }
        var order: [(index: Int, begin: Int, size: Int)] = []
        for (i, e) in entries.enumerated() where e.key != "__metadata__" {
            guard case .object(let info) = e.value,
                  let dtype = info.first(where: { $0.key == "dtype" }), case .string(let name) = dtype.value, let item = itemSize(name),
                  let shape = info.first(where: { $0.key == "shape" }), case .array(let dims) = shape.value else { continue }
            var count = 1
            for d in dims {
                guard let v = d.integer, v >= 0, v <= 1 << 16 else { count = -1; break }
                count *= v
                if count > 1 << 16 { count = -1; break }
            }
            guard count >= 0 else { continue }
            var begin = 0
            if let offsets = info.first(where: { $0.key == "data_offsets" }), case .array(let o) = offsets.value,
               let b = o.first?.integer { begin = b }
            order.append((i, begin, count * item))
        }
        var newData: [UInt8] = []
        for t in order.sorted(by: { $0.begin < $1.begin }) {
            guard case .object(var info) = entries[t.index].value else { continue }
            let start = newData.count
            for k in 0..<t.size {
                let old = t.begin &+ k
                newData.append(old >= 0 && old < data.count ? data[old] : 0)
            }
            info.removeAll { $0.key == "data_offsets" }
            info.append(("data_offsets", .array([.bare(String(start)), .bare(String(start + t.size))])))
            entries[t.index].value = .object(info)
        }
        if rng.oneIn(16) { newData.append(UInt8(truncatingIfNeeded: rng.next())) }
        header = .object(entries)
        data = newData
    }
}
