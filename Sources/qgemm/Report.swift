import ArgumentParser
import Foundation
import QGEMM
import QGEMMBaseline

/// `qgemm` with no arguments: the machine, a quick accuracy and exactness
/// check, and a short benchmark against OpenBLAS.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The default report: CPU and kernels, validate --quick, and a short bench (under 30 s).")

    func run() throws {
        print("== machine")
        try Info.parse([]).run()
        print("\n== validate --quick")
        let validate = try Validate.parse(["--quick"])
        var validationFailed = false
        do { try validate.run() } catch let e as ExitCode where e != .success { validationFailed = true }
        print("\n== bench (1 thread, int8 output)")
        let bench = try Bench.parse(["--shape", "1024x1024x1024", "--shape", "1x4096x4096", "--shape", "384x768x3072",
                                     "--min-time", "0.3", "--repeat", "3"])
        try bench.run()
        if validationFailed { throw ExitCode(1) }
    }
}
