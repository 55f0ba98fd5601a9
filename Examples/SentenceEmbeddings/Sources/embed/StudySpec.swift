import Foundation
import QGEMM
import SentenceEmbeddings

/// `embed --study FILE`: configurations of the Linear layers to measure on
/// the same calibration and evaluation sentences (scripts/minilm_check.py
/// writes the file):
///
/// ```json
/// {"calibration": ["…"], "evaluation": ["…"],
///  "configs": [{"label": "static-input-mse",
///               "default": {"mode": "static-input", "observer": "mse", "smooth": 0.5},
///               "layers": {"0.output.dense": {"mode": "dynamic", "granularity": "row"}}}]}
/// ```
///
/// Modes: float, dynamic (granularity row or tensor), int4 and int4-awq
/// ("group": the group size, default 32; "scales": absMax or minimizingError
/// for int4; int4-awq searches AWQ-style scales on the calibration sentences,
/// with minimizingError group scales, and with "gptq": a damping, also
/// GPTQ-style rounding), static and
/// static-input (observer minmax, moving, percentile with "percentile",
/// mse or entropy; "smooth": SmoothQuant's alpha). Prints a JSON list of
/// ``AccuracyStudy`` results (an exact layer's SQNR is the string "Infinity").
struct StudySpec: Decodable {
    struct Recipe: Decodable {
        let mode: String
        let granularity: String?
        let observer: String?
        let percentile: Double?
        let smooth: Float?
        let group: Int?
        let scales: String?
        let gptq: Float?

        func recipe() throws -> LayerRecipe {
            if gptq != nil, mode != "int4-awq" { throw QGEMMError(.invalidArgument, "\"gptq\" goes with mode int4-awq, not \(mode)") }
            switch mode {
            case "float": return .float
            case "dynamic":
                switch granularity ?? "row" {
                case "row": return .dynamic(.perRow)
                case "tensor": return .dynamic(.perTensor)
                case let g: throw QGEMMError(.invalidArgument, "granularity \(g): row or tensor")
                }
            case "static", "static-input":
                let o = try LayerRecipe.Observer(name: observer ?? "minmax", percentile: percentile)
                return .calibrated(mode == "static" ? .static : .staticInput, o, smoothingAlpha: smooth)
            case "int4":
                guard let rule = Int4Weights.GroupScales(rawValue: scales ?? "absMax") else {
                    throw QGEMMError(.invalidArgument, "scales \(scales ?? ""): absMax or minimizingError")
                }
                return .int4(groupSize: group ?? 32, scales: rule)
            case "int4-awq":
                return .int4Searched(groupSize: group ?? 32, errorCompensation: gptq.map { .gptq(damping: $0) } ?? .none)
            default:
                throw QGEMMError(.invalidArgument, "mode \(mode): float, dynamic, static, static-input, int4 or int4-awq")
            }
        }
    }

    struct Config: Decodable {
        let label: String
        let `default`: Recipe
        let layers: [String: Recipe]?
    }

    let calibration: [String]
    let evaluation: [String]
    let configs: [Config]

    static func run(_ path: String, checkpoint: Checkpoint) throws {
        let spec: StudySpec
        do {
            spec = try JSONDecoder().decode(StudySpec.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw QGEMMError(.file, "--study \(path): \(error)")
        }
        let calibration = try CalibrationInputs(checkpoint: checkpoint, sentences: spec.calibration)
        var results: [AccuracyStudy] = []
        for (i, config) in spec.configs.enumerated() {
            let started = Date()
            let fallback = try config.default.recipe()
            let overrides = try (config.layers ?? [:]).mapValues { try $0.recipe() }
            results.append(try AccuracyStudy(label: config.label, checkpoint: checkpoint, recipe: { overrides[$0] ?? fallback },
                                             calibration: calibration, evaluation: spec.evaluation,
                                             threads: ProcessInfo.processInfo.activeProcessorCount))
            FileHandle.standardError.write(Data(String(format: "embed --study: %d/%d %@ (%.1f s)\n", i + 1, spec.configs.count,
                                                       config.label, Date().timeIntervalSince(started)).utf8))
        }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        print(String(decoding: try encoder.encode(results), as: UTF8.self))
    }
}
