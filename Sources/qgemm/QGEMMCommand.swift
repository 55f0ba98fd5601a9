import ArgumentParser
import QGEMM

@main
struct QGEMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qgemm",
        abstract: "Exact int8 quantized GEMM, checked and timed against OpenBLAS.",
        version: qgemmVersion,
        subcommands: [Report.self, Info.self, Validate.self, Bench.self, GEMMCommand.self, LinearCommand.self],
        defaultSubcommand: Report.self
    )
}

/// The version `qgemm --version` prints.
let qgemmVersion = "0.1.0"
