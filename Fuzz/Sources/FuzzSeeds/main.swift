// Writes the committed seed corpora of the file-format fuzz targets: a valid
// safetensors layer file for every mode, granularity, activation, rounding
// and optional tensor, a plain safetensors file, and a .npy file for every
// dtype. Run it after a format change:
//   swift run --package-path Fuzz --scratch-path .build-fuzz-seeds FuzzSeeds Fuzz/Corpus
import Foundation
import QGEMM

@main
struct FuzzSeeds {
    static func main() throws {
        let root = URL(fileURLWithPath: CommandLine.arguments.dropFirst().first ?? "Fuzz/Corpus")
        try writeSafeTensors(to: root.appendingPathComponent("safetensors"))
        try writeNPY(to: root.appendingPathComponent("npy"))
    }

    static func writeSafeTensors(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let n = 3, k = 5
        let w: [Float] = (0..<(n * k)).map { Float(($0 * 7) % 11) / 10 - 0.5 }
        let b: [Float] = [0.25, -0.5, 0.125]
        let smoothing = try Smoothing(factors: [1, 2, 0.5, 1.5, 1])
        let u8 = try QuantizationParameters(type: .uint8, scale: 0.02, zeroPoint: 128)
        let i8In = try QuantizationParameters(type: .int8, scale: 0.03, zeroPoint: -3)
        let i8Out = try QuantizationParameters(type: .int8, scale: 0.05, zeroPoint: -5)
        let u8Out = try QuantizationParameters(type: .uint8, scale: 0.04, zeroPoint: 120)
        var layers: [(String, QuantizedLinear)] = [
            ("dynamic-perRow", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perRow))),
            ("dynamic-perTensor-noBias", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .dynamic(.perTensor))),
            ("dynamic-smoothing", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .dynamic(.perRow),
                                                      smoothing: smoothing)),
            ("staticInput-uint8", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .staticInput(u8))),
            ("staticInput-int8-smoothing", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, mode: .staticInput(i8In),
                                                               smoothing: smoothing)),
            ("static-noBias", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k,
                                                  mode: .static(input: u8, output: i8Out, activation: .none))),
            ("static-smoothing", try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                                     mode: .static(input: u8, output: i8Out, activation: .relu), smoothing: smoothing)),
        ]
        for activation in QuantizedLinear.Activation.allCases {
            for rounding in RoundingMode.allCases {
                for (typeName, output) in [("int8", i8Out), ("uint8", u8Out)] {
                    let layer = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b,
                                                    mode: .static(input: typeName == "int8" ? u8 : i8In, output: output, activation: activation),
                                                    rounding: rounding)
                    layers.append(("static-\(activation.rawValue)-\(rounding.rawValue)-\(typeName)", layer))
                }
            }
        }
        for (name, layer) in layers {
            try layer.safeTensors().write(to: folder.appendingPathComponent(name + ".safetensors"))
        }
        // Per-tensor weights exist only in files (the loader reads them): one
        // scale for every channel.
        var perTensor = try layers[0].1.safeTensors()
        perTensor.metadata["weight_granularity"] = "perTensor"
        let scales = perTensor.tensors["weight_scale"]?.float32Values ?? [1]
        perTensor.tensors["weight_scale"] = try .init(float32: [scales.max() ?? 1], shape: [1])
        try perTensor.write(to: folder.appendingPathComponent("dynamic-perTensorWeights.safetensors"))
        // 4-bit weights: odd K (a padded last nibble), a short last group, with and without bias.
        for (name, kk, group, withBias) in [("int4-g8-bias", 13, 8, true), ("int4-g16", 5, 16, false)] {
            let w4 = (0..<(n * kk)).map { Float(($0 * 7) % 13) / 13 - 0.5 }
            let weights = try Int4Weights(quantizing: w4, outputChannels: n, inputChannels: kk, groupSize: group,
                                          bias: withBias ? b : nil)
            try weights.safeTensors().write(to: folder.appendingPathComponent(name + ".safetensors"))
        }
        // The int8 layers' weights, bias and smoothing as a QuantizedLinear
        // file in int4 mode (groups of 8).
        let int4Mode = try QuantizedLinear(weights: w, outputChannels: n, inputChannels: k, bias: b, mode: .int4Weights(groupSize: 8),
                                           smoothing: smoothing)
        try int4Mode.safeTensors().write(to: folder.appendingPathComponent("int4Weights-mode-smoothing.safetensors"))
        // A file that is no layer: every dtype the reader knows.
        let plain = SafeTensorsFile(tensors: [
            "a": try .init(dtype: .float16, shape: [2], bytes: [0, 60, 0, 188]),
            "b": try .init(dtype: .int64, shape: [1, 1], bytes: [1, 0, 0, 0, 0, 0, 0, 0]),
            "c": try .init(dtype: .uint8, shape: [], bytes: [7]),
            "d": try .init(int32: [1, -1], shape: [2]),
            "e": try .init(int8: [], shape: [0, 3]),
        ], metadata: ["note": "not a layer"])
        try plain.write(to: folder.appendingPathComponent("plain.safetensors"))
    }

    static func writeNPY(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let arrays: [(String, NPYArray)] = [
            ("int8", try NPYArray(int8: [1, -2, 3, -4], shape: [2, 2])),
            ("uint8", try NPYArray(uint8: [0, 255, 7], shape: [3])),
            ("int32", try NPYArray(int32: [1, -2, 2_147_483_647], shape: [1, 3])),
            ("float32", try NPYArray(float32: [0.5, -1.5, 3, 1e-3, .infinity, -0.0], shape: [2, 3])),
            ("float64", try NPYArray(float64: [0.5, -1e300, 2], shape: [3, 1])),
            ("scalar", try NPYArray(float32: [2.5], shape: [])),
            ("empty", try NPYArray(float32: [], shape: [0, 4])),
        ]
        for (name, array) in arrays { try array.write(to: folder.appendingPathComponent(name + ".npy")) }
        // Dtypes the reader takes but NPYArray does not write, as NumPy writes them.
        try rawNPY(descr: "<i8", shape: "(2,)", data: [5, 0, 0, 0, 0, 0, 0, 0, 0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            .write(to: folder.appendingPathComponent("int64.npy"))
        try rawNPY(descr: "<f2", shape: "(1, 2)", data: [0, 0x3C, 0x00, 0xFC]).write(to: folder.appendingPathComponent("float16.npy"))
    }

    static func rawNPY(descr: String, shape: String, data: [UInt8]) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let length = header.utf8.count
        return Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + data)
    }
}
