import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import QGEMM
import QGEMMBaseline

/// Saving and loading quantized layers as safetensors: a loaded layer gives
/// the saved layer's bits, and damaged files are refused with a QGEMMError.
@Suite("safetensors layers")
struct SafeTensorsTests {
    static let m = 13, k = 40, n = 24

    static func floats(_ count: Int, _ rng: inout CheckRandom, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in scale * rng.gaussian() }
    }

    /// A static layer with everything a file can hold: bias, smoothing, ReLU,
    /// double rounding.
    static func staticLayer() throws -> QuantizedLinear {
        var rng = CheckRandom(seed: 41)
        let w = floats(n * k, &rng, scale: 0.1), b = floats(n, &rng, scale: 0.1)
        let smoothing = try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 7) * 0.25 })
        let input = try QuantizationParameters(type: .uint8, scale: 0.031, zeroPoint: 117)
        let output = try QuantizationParameters(type: .int8, scale: 0.027, zeroPoint: -9)
        return try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                   mode: .static(input: input, output: output, activation: .relu),
                                   rounding: .doubleRounding, smoothing: smoothing)
    }

    static func dynamicLayer() throws -> QuantizedLinear {
        var rng = CheckRandom(seed: 43)
        return try QuantizedLinear(weights: floats(n * k, &rng), outputChannels: n, inputChannels: k, bias: floats(n, &rng),
                                   mode: .dynamic(.perTensor))
    }

    /// int4 mode with bias, smoothing and a group (16) that leaves K = 40 a short last group.
    static func int4Layer() throws -> QuantizedLinear {
        var rng = CheckRandom(seed: 49)
        return try QuantizedLinear(weights: floats(n * k, &rng), outputChannels: n, inputChannels: k, bias: floats(n, &rng),
                                   mode: .int4Weights(groupSize: 16),
                                   smoothing: try Smoothing(factors: (0..<k).map { 0.5 + Float($0 % 5) * 0.5 }),
                                   groupScales: .minimizingError)
    }

    static func staticInputLayer() throws -> QuantizedLinear {
        var rng = CheckRandom(seed: 45)
        return try QuantizedLinear(weights: floats(n * k, &rng), outputChannels: n, inputChannels: k, bias: floats(n, &rng),
                                   mode: .staticInput(try QuantizationParameters(type: .int8, scale: 0.04, zeroPoint: 5)),
                                   smoothing: try Smoothing(factors: (0..<k).map { 1 + Float($0 % 3) }))
    }

    @Test func roundTripGivesTheSameBits() throws {
        var rng = CheckRandom(seed: 47)
        let x = Self.floats(Self.m * Self.k, &rng, scale: 2)
        for layer in [try Self.staticLayer(), try Self.dynamicLayer(), try Self.staticInputLayer(), try Self.int4Layer()] {
            let bytes = try layer.safeTensors().serialized()
            let loaded = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes))
            #expect(try loaded(x, rows: Self.m) == layer(x, rows: Self.m))
            #expect(try loaded.safeTensors().serialized() == bytes) // saving again writes the same file
            #expect(loaded.packed?.qBias == layer.packed?.qBias && loaded.packed?.weightScales == layer.packed?.weightScales)
            #expect(loaded.int4Weights?.scales == layer.int4Weights?.scales && loaded.mode.name == layer.mode.name)
            if case .static = layer.mode {
                let q: [UInt8] = try layer.quantizeInput(x)
                let a: [Int8] = try layer.forward(q, rows: Self.m), b: [Int8] = try loaded.forward(q, rows: Self.m)
                #expect(a == b)
            }
        }
        // Through a file as well.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-layer-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let layer = try Self.staticLayer()
        try layer.save(to: url)
        #expect(try QuantizedLinear(contentsOf: url)(x, rows: Self.m) == layer(x, rows: Self.m))
    }

    /// A layer saved in the default environment loads to the same layer
    /// when the loading thread rounds otherwise: its scales (0.1 and 0.3,
    /// written as "0.1" and "0.3") read downward were other Floats, and the
    /// static layer was refused for its quantized bias.
    @Test func aSavedLayerLoadsTheSameInAnyRoundingMode() throws {
        var rng = CheckRandom(seed: 53)
        let x = Self.floats(Self.m * Self.k, &rng, scale: 2)
        let input = try QuantizationParameters(type: .uint8, scale: 0.1, zeroPoint: 128)
        let output = try QuantizationParameters(type: .int8, scale: 0.3, zeroPoint: -3)
        let w = Self.floats(Self.n * Self.k, &rng), b = Self.floats(Self.n, &rng)
        let layers = [
            try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b,
                                mode: .static(input: input, output: output, activation: .none)),
            try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b, mode: .staticInput(input)),
        ]
        for layer in layers {
            let bytes = try layer.safeTensors().serialized()
            for direction in Self.directedRoundingModes {
                let mode = fegetround()
                fesetround(direction)
                let loaded = Result { try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes)) }
                #expect(fegetround() == direction, "the loader left another rounding mode")
                fesetround(mode)
                let same = try loaded.get()
                #expect(try same(x, rows: Self.m) == layer(x, rows: Self.m), "\(layer.mode.name), mode \(direction)")
                #expect(try same.safeTensors().serialized() == bytes, "\(layer.mode.name), mode \(direction)")
            }
        }
    }

    /// A layer built in a directed rounding mode is the layer its file
    /// reloads: the values derived from its parameters (a ReLU6 clamp, the
    /// fixed-point multipliers, the quantized bias) round to nearest whatever
    /// the mode, as the loader derives them. Downward, 6/2.4 was 2.4999998 and
    /// clamped at 2 where the file said 3 (and reloaded with 3, silently).
    @Test func aLayerBuiltInADirectedModeReloadsTheSame() throws {
        var rng = CheckRandom(seed: 47)
        let w = Self.floats(Self.n * Self.k, &rng), b = Self.floats(Self.n, &rng)
        let input = try QuantizationParameters(type: .uint8, scale: 0.05, zeroPoint: 3)
        let output = try QuantizationParameters(type: .int8, scale: 2.4, zeroPoint: 0)
        for direction in Self.directedRoundingModes {
            let mode = fegetround()
            fesetround(direction)
            let built = Result { try QuantizedLinear(weights: w, outputChannels: Self.n, inputChannels: Self.k, bias: b,
                                                     mode: .static(input: input, output: output, activation: .relu6)) }
            fesetround(mode)
            let layer = try built.get()
            let loaded = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: try layer.safeTensors().serialized()))
            #expect(layer.packed?.clamp == 0...3, "mode \(direction): \(String(describing: layer.packed?.clamp))")
            #expect(loaded.packed?.clamp == layer.packed?.clamp && loaded.packed?.multipliers == layer.packed?.multipliers
                    && loaded.packed?.quantizedBias == layer.packed?.quantizedBias, "mode \(direction)")
        }
    }

    /// Errors about a file's contents name the file (as the .npy reader's
    /// do); a header that is not UTF-8 is refused (JSONSerialization took
    /// UTF-16 and UTF-32 on its own); and the writers refuse what the readers
    /// would refuse, so every file written reads back.
    @Test func fileErrorsNameTheFileAndWritersWriteWhatReadersRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A valid safetensors file that is no layer.
        let url = dir.appendingPathComponent("other.safetensors")
        try SafeTensorsFile(tensors: ["x": try .init(int8: [1, 2], shape: [2])], metadata: [:]).write(to: url)
        for load in [{ _ = try QuantizedLinear(contentsOf: url) }, { _ = try Int4Weights(contentsOf: url) }] as [() throws -> Void] {
            do { try load(); Issue.record("a file with no layer loaded") } catch let e as QGEMMError {
                #expect(e.message.hasPrefix(url.path + ": "), "\(e.message)")
            }
        }
        try Data([1, 2, 3]).write(to: url)
        do { _ = try SafeTensorsFile(contentsOf: url); Issue.record("3 bytes parsed") } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.hasPrefix(url.path + ": not a valid safetensors file"), "\(e.message)")
        }
        // "{}" in UTF-16LE and UTF-32LE.
        for json in [[0x7B, 0, 0x7D, 0] as [UInt8], [0x7B, 0, 0, 0, 0x7D, 0, 0, 0]] {
            #expect(throws: QGEMMError(.file, "")) {
                _ = try SafeTensorsFile(bytes: withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json)
            }
        }
        #expect(throws: QGEMMError(.invalidShape, "")) { _ = try SafeTensorsFile.Tensor(int8: [], shape: [0, 1 << 62]) }
        #expect(throws: QGEMMError(.invalidShape, "")) { _ = try NPYArray(int8: [1], shape: [Int](repeating: 1, count: 33)) }
        let deepest = try NPYArray(int8: [1], shape: [Int](repeating: 1, count: 32))
        #expect(try NPYArray(parsing: deepest.fileBytes()) == deepest)
    }

    /// fesetround's three directed modes (named through the C library: the
    /// BLAS module's headers declare them too).
    static var directedRoundingModes: [Int32] {
        #if canImport(Glibc)
        [Glibc.FE_DOWNWARD, Glibc.FE_UPWARD, Glibc.FE_TOWARDZERO]
        #else
        [Darwin.FE_DOWNWARD, Darwin.FE_UPWARD, Darwin.FE_TOWARDZERO]
        #endif
    }

    /// The header of a valid file, as a mutable dictionary, and its data bytes.
    static func parts(_ file: [UInt8]) throws -> (header: [String: Any], data: [UInt8]) {
        var length = 0
        for i in 0..<8 { length |= Int(file[i]) << (8 * i) }
        let header = try JSONSerialization.jsonObject(with: Data(file[8..<(8 + length)])) as! [String: Any]
        return (header, Array(file[(8 + length)...]))
    }

    static func assemble(_ header: [String: Any], _ data: [UInt8]) throws -> [UInt8] {
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
    }

    /// A static-input layer whose S_X·S_W overflows Float (here: its input
    /// scale raised to 1e30 in the file) is refused when loaded, as when built:
    /// it could never run.
    @Test func aStaticInputFileThatCouldNeverRunIsRefused() throws {
        let layer = try QuantizedLinear(weights: [1e12, -3e11, 5, 7], outputChannels: 2, inputChannels: 2,
                                        mode: .staticInput(try QuantizationParameters(type: .uint8, scale: 0.04, zeroPoint: 5)))
        let file = try layer.safeTensors()
        var meta = file.metadata
        meta["input_scale"] = "1e+30"
        #expect(throws: QGEMMError(.invalidScale, "")) {
            _ = try QuantizedLinear(safeTensors: SafeTensorsFile(tensors: file.tensors, metadata: meta))
        }
        // A grid that ends past Float is refused too, named by its keys.
        meta["input_scale"] = "3e+38"
        do {
            _ = try QuantizedLinear(safeTensors: SafeTensorsFile(tensors: file.tensors, metadata: meta))
            Issue.record("an input grid ending past Float was loaded")
        } catch let e as QGEMMError {
            #expect(e.code == .invalidScale && e.message.hasPrefix("input_scale, input_zero_point: "), "\(e.message)")
        }
        meta["input_scale"] = file.metadata["input_scale"]
        _ = try QuantizedLinear(safeTensors: SafeTensorsFile(tensors: file.tensors, metadata: meta))
    }

    /// A metadata key the file's mode does not use is refused, by name: one
    /// of another mode would otherwise be ignored (an int8 layer's keys in an
    /// int4 file, a static layer's input parameters in a dynamic one).
    @Test func metadataKeysTheModeDoesNotUseAreRefused() throws {
        func refusal(_ file: SafeTensorsFile, adding key: String, _ load: (SafeTensorsFile) throws -> Void) -> String? {
            var meta = file.metadata
            meta[key] = "1"
            do { try load(SafeTensorsFile(tensors: file.tensors, metadata: meta)) } catch let e as QGEMMError {
                return e.code == .file ? e.message : "code \(e.code)"
            } catch { return "\(error)" }
            return nil
        }
        let layers = [("static", try Self.staticLayer()), ("dynamic", try Self.dynamicLayer()),
                      ("staticInput", try Self.staticInputLayer()), ("int4Weights", try Self.int4Layer())]
        let otherModesKeys = ["note", "input_scale", "output_scale", "input_granularity", "weight_granularity", "group_size",
                              "input_channels"]
        for (mode, layer) in layers {
            let file = try layer.safeTensors()
            for key in otherModesKeys where file.metadata[key] == nil {
                let message = refusal(file, adding: key) { _ = try QuantizedLinear(safeTensors: $0) }
                #expect(message?.contains("'\(key)'") == true && message?.contains(mode) == true, "\(mode) + \(key): \(message ?? "loaded")")
            }
        }
        let int4 = try #require(try Self.int4Layer().int4Weights).safeTensors()
        for key in ["mode", "weight_granularity", "note"] {
            let message = refusal(int4, adding: key) { _ = try Int4Weights(safeTensors: $0) }
            #expect(message?.contains("'\(key)'") == true, "Int4Weights + \(key): \(message ?? "loaded")")
        }
    }

    /// The loaders read regular files only, and say so: a device such as
    /// /dev/zero, a pipe (a damaged folder can link a layer file to either)
    /// or a folder is refused at once with `.file`, "not a regular file"
    /// (Foundation's own refusal read "You don't have permission"). A file
    /// larger than the memory this process may use is refused before anything
    /// is allocated.
    @Test func pipesDevicesAndFoldersAreNotRead() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-fifo-\(UUID().uuidString)")
        guard mkfifo(fifo.path, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
        defer { try? FileManager.default.removeItem(at: fifo) }
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-zero-\(UUID().uuidString).safetensors")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/dev/zero")
        defer { try? FileManager.default.removeItem(at: link) }
        for url in [URL(fileURLWithPath: "/dev/zero"), link, fifo, FileManager.default.temporaryDirectory] {
            for (what, load) in [("SafeTensorsFile", { _ = try SafeTensorsFile(contentsOf: url) }),
                                 ("QuantizedLinear", { _ = try QuantizedLinear(contentsOf: url) }),
                                 ("Int4Weights", { _ = try Int4Weights(contentsOf: url) }),
                                 ("NPYArray", { _ = try NPYArray(contentsOf: url) })] as [(String, () throws -> Void)] {
                do {
                    try load()
                    Issue.record("\(what) read \(url.path)")
                } catch let e as QGEMMError {
                    #expect(e.code == .file && e.message.contains("not a regular file"), "\(what), \(url.path): \(e)")
                }
            }
        }
        // A missing file is still a .file error naming it.
        do {
            _ = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors"))
            Issue.record("a missing file was read")
        } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.contains("/nonexistent/x.safetensors"), "\(e)")
        }
        // A sparse file one byte larger than the memory this process may use.
        // (Skipped where the file could not be sparse or that long: no holes, a file-size limit.)
        let memory = availableMemoryBytes()
        #if os(Linux)
        let fileSize = Int32(RLIMIT_FSIZE.rawValue)
        #else
        let fileSize = RLIMIT_FSIZE
        #endif
        var fileLimit = rlimit()
        guard memory < 1 << 40, getrlimit(fileSize, &fileLimit) == 0, UInt64(fileLimit.rlim_cur) > memory else {
            print("pipesDevicesAndFoldersAreNotRead: the size check skipped: memory of 1 TiB or more (or unknown), or a file-size limit")
            return
        }
        let huge = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-huge-\(UUID().uuidString).safetensors")
        guard FileManager.default.createFile(atPath: huge.path, contents: nil) else { Issue.record("cannot create \(huge.path)"); return }
        defer { try? FileManager.default.removeItem(at: huge) }
        do {
            let handle = try FileHandle(forWritingTo: huge)
            defer { try? handle.close() }
            try handle.truncate(atOffset: memory + 1)
        } catch {
            print("pipesDevicesAndFoldersAreNotRead: the size check skipped: this file system cannot hold a sparse file of \(memory + 1) bytes (\(error))")
            return
        }
        do {
            _ = try SafeTensorsFile(contentsOf: huge)
            Issue.record("a file larger than memory was read")
        } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.contains("more than the \(memory) this process may use"), "\(e)")
        }
    }

    /// Each kind of damage, applied to a valid static layer file, must be refused
    /// with a QGEMMError (and never trap).
    @Test func damagedFilesAreRefused() throws {
        let good = try Self.staticLayer().safeTensors().serialized()
        let (header, data) = try Self.parts(good)
        func edited(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
            var h = header
            change(&h)
            return try Self.assemble(h, data)
        }
        func metadata(_ key: String, _ value: String?) throws -> [UInt8] {
            try edited { h in
                var meta = h["__metadata__"] as! [String: Any]
                meta[key] = value
                h["__metadata__"] = meta
            }
        }
        func tensorInfo(_ name: String, _ change: @escaping (inout [String: Any]) -> Void) throws -> [UInt8] {
            try edited { h in
                var t = h[name] as! [String: Any]
                change(&t)
                h[name] = t
            }
        }
        let offsets = (header["weight_scale"] as! [String: Any])["data_offsets"] as! [Int]
        var negativeScale = data
        negativeScale[offsets[0] + 3] |= 0x80 // the first weight scale's sign bit
        let quantizedBias = (header["bias_quantized"] as! [String: Any])["data_offsets"] as! [Int]
        var tamperedBias = data
        tamperedBias[quantizedBias[0]] ^= 1
        let damaged: [(String, [UInt8])] = [
            ("shorter than the length field", Array(good.prefix(5))),
            ("header length past the end", [UInt8](repeating: 0xFF, count: 8) + good.dropFirst(8)),
            ("header is not JSON", try Self.assemble([:], []).prefix(8) + Array("{not json".utf8) + Array(repeating: 32, count: 7)),
            ("header is a JSON array", withUnsafeBytes(of: UInt64(2).littleEndian, Array.init) + Array("[]".utf8)),
            ("unsupported dtype", try tensorInfo("weight") { $0["dtype"] = "F64" }),
            ("shape does not match the byte range", try tensorInfo("weight") { $0["shape"] = [Self.n, Self.k + 1] }),
            ("negative dimension", try tensorInfo("bias") { $0["shape"] = [-Self.n] }),
            ("gap before the first tensor", try {
                var h = header
                for (name, value) in h where name != "__metadata__" {
                    var t = value as! [String: Any]
                    t["data_offsets"] = (t["data_offsets"] as! [Int]).map { $0 + 4 }
                    h[name] = t
                }
                return try Self.assemble(h, [0, 0, 0, 0] + data)
            }()),
            ("overlapping tensors", try tensorInfo("bias") { t in
                let o = t["data_offsets"] as! [Int]
                t["data_offsets"] = [o[0] - 4, o[1] - 4]
            }),
            ("bytes after the last tensor", good + [0, 0, 0, 0]),
            ("truncated data", Array(good.dropLast(3))),
            ("not this package's format", try metadata("format", "something-else")),
            ("unknown version", try metadata("version", "2")),
            ("unknown mode", try metadata("mode", "sometimes")),
            ("zero point outside uint8", try metadata("input_zero_point", "300")),
            ("scale that is not a number", try metadata("output_scale", "fast")),
            ("zero scale", try metadata("input_scale", "0")),
            ("clamp that is not the activation's", try metadata("clamp_min", "-128")),
            // The message for a clamp mismatch once read a missing key by force
            // (found by the safetensors fuzz target; Fuzz/Regressions has the file).
            ("clamp mismatch with clamp_max missing", try edited { h in
                var meta = h["__metadata__"] as! [String: Any]
                meta["clamp_min"] = "-128"
                meta["clamp_max"] = nil
                h["__metadata__"] = meta
            }),
            ("clamp mismatch with clamp_min missing", try edited { h in
                var meta = h["__metadata__"] as! [String: Any]
                meta["clamp_max"] = "1"
                meta["clamp_min"] = nil
                h["__metadata__"] = meta
            }),
            ("unknown rounding", try metadata("rounding", "stochastic")),
            ("missing metadata key", try metadata("activation", nil)),
            ("negative weight scale", try Self.assemble(header, negativeScale)),
            ("bias_quantized that does not match", try Self.assemble(header, tamperedBias)),
            ("weights missing", try edited { h in
                let w = h.removeValue(forKey: "weight") as! [String: Any]
                h["other"] = w
            }),
            ("unknown tensor", try edited { h in h["extra"] = h.removeValue(forKey: "smoothing") }),
        ]
        #expect(damaged.count >= 10)
        for (what, bytes) in damaged {
            #expect(throws: QGEMMError.self, "\(what)") {
                _ = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes))
            }
        }
        // The clamp cases are refused for the missing key, by name.
        for (what, key) in [("clamp mismatch with clamp_max missing", "clamp_max"), ("clamp mismatch with clamp_min missing", "clamp_min")] {
            let bytes = try #require(damaged.first { $0.0 == what }?.1)
            do {
                _ = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes))
                Issue.record("\(what): loaded")
            } catch let e as QGEMMError {
                #expect(e.message.contains("'\(key)'"), "\(what): \(e.message)")
            }
        }
        // Weights at the accumulator bound's far side: refused by PackedWeights' check.
        let k = 66_000
        let tooBig = SafeTensorsFile(tensors: ["weight": try .init(int8: [Int8](repeating: -128, count: k), shape: [1, k]),
                                               "weight_scale": try .init(float32: [0.01], shape: [1])],
                                     metadata: ["format": QuantizedLinear.safeTensorsFormat, "version": "1", "mode": "dynamic",
                                                "input_granularity": "perRow", "weight_granularity": "perTensor"])
        #expect(throws: QGEMMError.self) { _ = try QuantizedLinear(safeTensors: tooBig) }
    }

    @Test func tensorsOfEveryDtypeRoundTrip() throws {
        let file = SafeTensorsFile(tensors: [
            "a": try .init(dtype: .int64, shape: [2], bytes: Array(0..<16)),
            "b": try .init(dtype: .float16, shape: [3, 1], bytes: Array(0..<6)),
            "c": try .init(dtype: .uint8, shape: [0], bytes: []),
        ], metadata: ["k": "v"])
        #expect(try SafeTensorsFile(bytes: try file.serialized()) == file)
        #expect(throws: QGEMMError.self) { _ = try SafeTensorsFile.Tensor(dtype: .int32, shape: [3], bytes: [1, 2, 3]) }
        // float16 read exactly: 1, −2, the smallest subnormal, −∞.
        let half = try SafeTensorsFile.Tensor(dtype: .float16, shape: [4], bytes: [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0xFC])
        #expect(half.float16Values == [1, -2, 0x1p-24, -.infinity])
        #expect(half.float32Values == nil && file.tensors["a"]?.float16Values == nil)
    }

    /// The writers refuse a tensor named `__metadata__`: it would replace the
    /// metadata object in the header (with or without metadata), and the file
    /// would not read back.
    @Test func aTensorNamedLikeTheMetadataIsRefusedByTheWriters() throws {
        let tensor = try SafeTensorsFile.Tensor(int8: [1, 2], shape: [2])
        for metadata in [[:], ["k": "v"]] {
            let file = SafeTensorsFile(tensors: ["__metadata__": tensor, "a": tensor], metadata: metadata)
            #expect { _ = try file.serialized() } throws: { ($0 as? QGEMMError)?.code == .invalidArgument }
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-meta-\(UUID().uuidString)")
            #expect { try file.write(to: url) } throws: { ($0 as? QGEMMError)?.code == .invalidArgument }
            #expect(!FileManager.default.fileExists(atPath: url.path))
        }
    }

    /// Header integers are read as written: a dimension past 2^53 (of a
    /// tensor with no elements) is not rounded to a neighbouring double; one
    /// written with a fraction or exponent counts only below 2^53, where
    /// every integer is a double.
    @Test func headerIntegersAreReadExactly() throws {
        func header(_ shape: String) -> [UInt8] {
            let json = Array(#"{"t":{"dtype":"U8","shape":\#(shape),"data_offsets":[0,0]}}"#.utf8)
            return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json
        }
        #expect(try SafeTensorsFile(bytes: header("[0,9007199254740993]")).tensors["t"]?.shape == [0, 9_007_199_254_740_993])
        #expect(try SafeTensorsFile(bytes: header("[0,4611686018427387903]")).tensors["t"]?.shape == [0, (1 << 62) - 1])
        #expect(try SafeTensorsFile(bytes: header("[0,2.0,1e3]")).tensors["t"]?.shape == [0, 2, 1000])
        for bad in ["[0,4611686018427387904]", "[0,18446744073709551615]", "[0,9007199254740993.0]", "[0,2.5]", "[0,true]", "[0,-1]"] {
            #expect(throws: QGEMMError.self, "\(bad)") { _ = try SafeTensorsFile(bytes: header(bad)) }
        }
    }

    /// The file readers read a header and then each tensor (or the array's
    /// data) by byte range, and the writers write the tensors' own bytes, so no
    /// file is held whole in memory. On disk each gives what the byte form
    /// gives: the same file, or the same refusal, for good files, the fuzz
    /// regressions and damaged ones.
    @Test func filesOnDiskReadAndWriteAsTheirBytesDo() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-parts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("file")

        let tensors = SafeTensorsFile(tensors: [
            "a": try .init(dtype: .int64, shape: [2], bytes: Array(0..<16)),
            "b": try .init(dtype: .float16, shape: [3, 1], bytes: Array(0..<6)),
            "c": try .init(dtype: .uint8, shape: [0], bytes: []),
            "d": try .init(int8: (0..<300).map { Int8(truncatingIfNeeded: $0 * 7) }, shape: [3, 100]),
        ], metadata: ["k": "v"])
        try tensors.write(to: url)
        #expect([UInt8](try Data(contentsOf: url)) == (try tensors.serialized()))
        #expect(try SafeTensorsFile(contentsOf: url) == tensors)
        let array = try NPYArray(float32: (0..<50).map { Float($0) * 0.25 }, shape: [5, 10])
        try array.write(to: url)
        #expect([UInt8](try Data(contentsOf: url)) == array.fileBytes())
        #expect(try NPYArray(contentsOf: url) == array)

        // The same outcome from the bytes and from a file holding them.
        func outcome<T: Equatable>(_ load: () throws -> T) -> Result<T, QGEMMError> {
            do { return .success(try load()) } catch let e as QGEMMError { return .failure(e) } catch {
                Issue.record("not a QGEMMError: \(error)")
                return .failure(QGEMMError(.file, "\(error)"))
            }
        }
        func check(_ bytes: [UInt8], _ what: String) throws {
            try Data(bytes).write(to: url)
            switch (outcome { try SafeTensorsFile(bytes: bytes) }, outcome { try SafeTensorsFile(contentsOf: url) }) {
            case let (.success(a), .success(b)): #expect(a == b, "\(what)")
            case let (.failure(a), .failure(b)): #expect(a.code == b.code && "\(url.path): \(a.message)" == b.message, "\(what): \(a) / \(b)")
            case let (a, b): Issue.record("\(what): safetensors bytes \(a), file \(b)")
            }
            switch (outcome { try NPYArray(parsing: bytes) }, outcome { try NPYArray(contentsOf: url) }) {
            case let (.success(a), .success(b)): #expect(a == b, "\(what)")
            case let (.failure(a), .failure(b)): #expect(a.code == b.code && "\(url.path): \(a.message)" == b.message, "\(what): \(a) / \(b)")
            case let (a, b): Issue.record("\(what): npy bytes \(a), file \(b)")
            }
        }
        let good = try Self.staticLayer().safeTensors().serialized(), npy = array.fileBytes()
        var inputs: [(String, [UInt8])] = [("a layer", good), ("an array", npy), ("empty", [])]
        for cut in [1, 5, 8, 9, 100, good.count - 1] { inputs.append(("the layer's first \(cut) bytes", Array(good.prefix(cut)))) }
        for cut in [6, 10, 11, 12, 64, npy.count - 1] { inputs.append(("the array's first \(cut) bytes", Array(npy.prefix(cut)))) }
        inputs.append(("a byte after the layer", good + [0]))
        inputs.append(("a byte after the array", npy + [0]))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for target in ["safetensors", "npy"] {
            let folder = root.appendingPathComponent("Fuzz/Regressions/\(target)")
            for file in ((try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []).sorted(by: { $0.path < $1.path }) {
                inputs.append((file.lastPathComponent, [UInt8](try Data(contentsOf: file))))
            }
        }
        #expect(inputs.count > 17, "no fuzz regressions found in \(root.path)/Fuzz/Regressions")
        for (what, bytes) in inputs { try check(bytes, what) }

        // A write that cannot happen is a .file error naming the path; a
        // path ending in "/" is a folder's, not written as a file without it.
        for target in [dir, dir.appendingPathComponent("missing/file"), URL(fileURLWithPath: dir.path + "/new/")] {
            do {
                try tensors.write(to: target)
                Issue.record("wrote \(target.path)")
            } catch let e as QGEMMError {
                #expect(e.code == .file && e.message.hasPrefix("cannot write \(target.path):"), "\(e)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("new").path))
        // Nor is a file read through a folder's path.
        do {
            _ = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: url.path + "/"))
            Issue.record("read \(url.path)/")
        } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.contains("not a regular file"), "\(e)")
        }
        // A pipe with no reader is refused, not waited for.
        let fifo = dir.appendingPathComponent("fifo")
        guard mkfifo(fifo.path, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
        do {
            try tensors.write(to: fifo)
            Issue.record("wrote a pipe with no reader")
        } catch let e as QGEMMError {
            #expect(e.code == .file && e.message.hasPrefix("cannot write \(fifo.path):"), "\(e)")
        }
        #if os(Linux)
        // A file that reports 0 bytes but holds more is refused as that, not
        // as a short file, and the .npy reader names it once.
        let proc = "/proc/self/status"
        for (what, load) in [("safetensors", { _ = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: proc)) }),
                             ("npy", { _ = try NPYArray(contentsOf: URL(fileURLWithPath: proc)) })] as [(String, () throws -> Void)] {
            do {
                try load()
                Issue.record("\(what) read \(proc)")
            } catch let e as QGEMMError {
                #expect(e.code == .file && e.message == "cannot read \(proc): it grew while read", "\(what): \(e)")
            }
        }
        #endif
    }

    /// The readers read a file's parts at different times, so a file that
    /// changes between them is refused: cut short (the read that needs the
    /// missing bytes says so), appended to, or rewritten at the same size.
    @Test func aFileThatChangesWhileReadIsRefused() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-change-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let original = [UInt8](repeating: 1, count: 100)
        func expectRefusal(_ expected: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("no refusal; expected '\(expected)'")
            } catch let e as QGEMMError {
                #expect(e.code == .file && e.message.hasPrefix("cannot read \(url.path): \(expected)"), "\(e)")
            } catch {
                Issue.record("not a QGEMMError: \(error)")
            }
        }
        // Cut short after opening.
        try Data(original).write(to: url)
        var file = try RegularFile(reading: url)
        #expect(try file.read(0..<10) == Array(original[0..<10]))
        try FileHandle(forWritingTo: url).truncate(atOffset: 50)
        expectRefusal("it shrank from 100 to 50 bytes while read") { _ = try file.read(40..<100) }
        expectRefusal("it changed while read") { try file.checkUnchanged() }
        // Appended to.
        try Data(original).write(to: url)
        file = try RegularFile(reading: url)
        _ = try file.read(0..<100)
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: [7])
        try handle.close()
        expectRefusal("it changed while read") { try file.checkUnchanged() }
        // Rewritten at the same size (a later modification time).
        try Data(original).write(to: url)
        file = try RegularFile(reading: url)
        try Data([UInt8](repeating: 2, count: 100)).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(10)], ofItemAtPath: url.path)
        expectRefusal("it changed while read") { try file.checkUnchanged() }
        // Unchanged: no refusal; a range past the size is refused, not trapped on.
        file = try RegularFile(reading: url)
        try file.checkUnchanged()
        expectRefusal("bytes 90..<101 are past its 100") { _ = try file.read(90..<101) }
    }

    /// Every input a fuzz target once failed on (Fuzz/Regressions/<target>/)
    /// is now refused with a QGEMMError or loads and runs: never a trap.
    @Test func fuzzRegressionsAreRefusedOrLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Fuzz/Regressions")
        var checked = 0
        for target in ["safetensors", "npy"] {
            let files = (try? FileManager.default.contentsOfDirectory(at: folder.appendingPathComponent(target),
                                                                       includingPropertiesForKeys: nil)) ?? []
            for url in files.sorted(by: { $0.path < $1.path }) {
                let bytes = [UInt8](try Data(contentsOf: url))
                do {
                    switch target {
                    case "safetensors":
                        let layer = try QuantizedLinear(safeTensors: try SafeTensorsFile(bytes: bytes))
                        _ = try layer([Float](repeating: 0.5, count: layer.inputChannels), rows: 1)
                    default:
                        let array = try NPYArray(parsing: bytes)
                        _ = try? array.floatValues()
                    }
                } catch is QGEMMError {
                    // refused with the documented error
                }
                checked += 1
            }
        }
        #expect(checked >= 1, "no regression files found under \(folder.path)")
    }
}
