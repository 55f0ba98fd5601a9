import CQGEMM
import Foundation
import Testing
import QGEMM

/// What the process may use of the machine (core/limits.c): cgroup limits
/// read from trees of files laid out as Linux mounts them, and the affinity
/// mask through `qgemm info` run under `taskset`.
@Suite("process limits")
struct ProcessLimitsTests {
    /// A cgroup tree in a temporary folder: `files` maps paths under the
    /// root to their contents; `cgroup` is /proc/self/cgroup's text.
    /// `cpu` or `memory` false passes NULL for that output (not read; 0 here;
    /// not both).
    func limits(cgroup: String, files: [String: String], cpu: Bool = true, memory wantMemory: Bool = true) throws
        -> (cpus: Double, memory: Int64) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qgemm-cgroup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let cgroupFile = root.appendingPathComponent("proc-self-cgroup")
        try Data(cgroup.utf8).write(to: cgroupFile)
        var cpus = -1.0
        var memory: Int64 = -1
        if cpu && wantMemory {
            qg_cgroup_limits(cgroupFile.path, root.path, &cpus, &memory)
        } else if cpu {
            qg_cgroup_limits(cgroupFile.path, root.path, &cpus, nil)
            memory = 0
        } else {
            qg_cgroup_limits(cgroupFile.path, root.path, nil, &memory)
            cpus = 0
        }
        return (cpus, memory)
    }

    /// cgroup v2: the smallest limit of the process's cgroup and its
    /// ancestors, "max" meaning none.
    @Test func unifiedHierarchyTakesTheSmallestLimitOnThePath() throws {
        let r = try limits(cgroup: "0::/system.slice/app.service\n", files: [
            "cpu.max": "50000 100000\n", // the root is above the walk's start, yet part of it
            "system.slice/cpu.max": "max 100000\n",
            "system.slice/memory.max": "8589934592\n",
            "system.slice/app.service/cpu.max": "150000 100000\n",
            "system.slice/app.service/memory.max": "max\n",
        ])
        #expect(r.cpus == 0.5)
        #expect(r.memory == 8_589_934_592)
        let unlimited = try limits(cgroup: "0::/a\n", files: ["a/cpu.max": "max 100000\n", "a/memory.max": "max\n"])
        #expect(unlimited.cpus == 0 && unlimited.memory == 0)
        let quota = try limits(cgroup: "0::/a\n", files: ["a/cpu.max": "250000 100000\n"])
        #expect(quota.cpus == 2.5 && quota.memory == 0)
        // Either limit alone, the other's output NULL.
        let both = ["a/cpu.max": "250000 100000\n", "a/memory.max": "4096\n"]
        #expect(try limits(cgroup: "0::/a\n", files: both, memory: false).cpus == 2.5)
        #expect(try limits(cgroup: "0::/a\n", files: both, cpu: false).memory == 4096)
        #expect(try limits(cgroup: "4:cpu:/x\n3:memory:/x\n", files: ["cpu/x/cpu.cfs_quota_us": "50000\n", "cpu/x/cpu.cfs_period_us": "100000\n",
                                                                     "memory/x/memory.limit_in_bytes": "8192\n"], cpu: false).memory == 8192)
    }

    /// cgroup v1 (and v2 mounted beside it at unified/): each controller in
    /// its own hierarchy, "-1" and a number near 2^63 meaning none.
    @Test func separateHierarchiesAreReadPerController() throws {
        let r = try limits(cgroup: """
            12:memory:/jobs/one
            11:cpu,cpuacct:/jobs/one
            1:name=systemd:/jobs/one
            0::/jobs/one

            """, files: [
            "memory/jobs/one/memory.limit_in_bytes": "9223372036854771712\n",
            "memory/jobs/memory.limit_in_bytes": "2147483648\n",
            "cpu,cpuacct/jobs/one/cpu.cfs_quota_us": "300000\n",
            "cpu,cpuacct/jobs/one/cpu.cfs_period_us": "100000\n",
            "unified/jobs/one/memory.max": "4294967296\n",
        ])
        #expect(r.cpus == 3)
        #expect(r.memory == 2_147_483_648)
        let none = try limits(cgroup: "4:cpu:/x\n3:memory:/x\n", files: [
            "cpu/x/cpu.cfs_quota_us": "-1\n", "cpu/x/cpu.cfs_period_us": "100000\n",
            "memory/x/memory.limit_in_bytes": "9223372036854771712\n",
        ])
        #expect(none.cpus == 0 && none.memory == 0)
    }

    /// A v1 hierarchy of several controllers is also found through the
    /// link named after one of them.
    @Test func combinedHierarchiesAreFoundThroughTheirLinks() throws {
        let r = try limits(cgroup: "3:cpu,cpuacct:/x\n2:memory,hugetlb:/x\n", files: [
            "cpu/x/cpu.cfs_quota_us": "50000\n", "cpu/x/cpu.cfs_period_us": "100000\n",
            "memory/x/memory.limit_in_bytes": "536870912\n",
        ])
        #expect(r.cpus == 0.5 && r.memory == 536_870_912)
    }

    /// A path that climbs out of the mount ("/.." outside the namespace's
    /// root) names no cgroup of the process: that hierarchy bounds nothing.
    @Test func aPathLeavingTheMountIsIgnored() throws {
        for path in ["/..", "/../x", "/a/../..", "/a/.."] {
            let r = try limits(cgroup: "0::\(path)\n", files: ["cpu.max": "10000 100000\n", "memory.max": "4096\n"])
            #expect(r.cpus == 0 && r.memory == 0, "\(path)")
        }
        let dots = try limits(cgroup: "0::/a..b/..c\n", files: ["a..b/cpu.max": "200000 100000\n"])
        #expect(dots.cpus == 2, "names with dots are names")
    }

    /// A line longer than the reader's buffer is skipped whole (cgroup names
    /// may hold colons, so its rest could read as a line of its own), and
    /// the lines after it still count.
    @Test func anOverlongLineIsSkipped() throws {
        let long = "0::/" + String(repeating: "d", count: 5000) + ":cpu:/c\n"
        let r = try limits(cgroup: long + "4:memory:/m\n", files: [
            "memory/m/memory.limit_in_bytes": "8192\n",
            "cpu/c/cpu.cfs_quota_us": "50000\n", "cpu/c/cpu.cfs_period_us": "100000\n",
        ])
        #expect(r.memory == 8192)
        #expect(r.cpus == 0, "the long line's rest read as a cpu hierarchy")
    }

    /// The quota caps the CPUs rounded up, never below one.
    @Test func quotaRoundsUp() {
        #expect(qg_cpus_within_quota(8, 0) == 8)
        #expect(qg_cpus_within_quota(8, 1.5) == 2)
        #expect(qg_cpus_within_quota(8, 2) == 2)
        #expect(qg_cpus_within_quota(8, 0.1) == 1)
        #expect(qg_cpus_within_quota(2, 16) == 2)
        #expect(qg_cpus_within_quota(0, 0) == 1)
        #expect(qg_cpus_within_quota(4, .nan) == 4)
    }

    /// A container without its own cgroup namespace sees the host's path,
    /// which is not under its mount; its own limits sit at the mount's root.
    @Test func aPathMissingUnderTheMountFallsBackToItsRoot() throws {
        let r = try limits(cgroup: "0::/docker/0123abcd\n", files: ["cpu.max": "100000 100000\n", "memory.max": "1073741824\n"])
        #expect(r.cpus == 1 && r.memory == 1_073_741_824)
    }

    /// Files that say nothing usable bound nothing, and never trap.
    @Test func malformedFilesBoundNothing() throws {
        for text in ["", "garbage", "100000", "0 100000", "-5 100000", "100000 0", "1e9 100000", "100000 12x", "max max"] {
            let r = try limits(cgroup: "0::/a\n", files: ["a/cpu.max": text])
            #expect(r.cpus == 0 && r.memory == 0, "cpu.max \(text)")
        }
        for text in ["", "garbage", "12x", "max", "-5", "0", "1e9", "1 2", "99999999999999999999999"] {
            let r = try limits(cgroup: "0::/a\n", files: ["a/memory.max": text])
            #expect(r.cpus == 0 && r.memory == 0, "memory.max \(text)")
        }
        let r = try limits(cgroup: "no colons here\n::\n0:\n", files: [:])
        #expect(r.cpus == 0 && r.memory == 0)
        var cpus = -1.0
        var memory: Int64 = -1
        qg_cgroup_limits("/nonexistent/qgemm/cgroup", "/nonexistent", &cpus, &memory)
        #expect(cpus == 0 && memory == 0)
    }

    /// The cores a call on all cores uses follow the affinity mask.
    @Test func coresFollowTheAffinityMask() throws {
        #if os(Linux)
        let taskset = "/usr/bin/taskset"
        guard FileManager.default.isExecutableFile(atPath: taskset) else {
            print("coresFollowTheAffinityMask: skipped (no \(taskset))")
            return
        }
        // One CPU this process may run on (CPU 0 need not be one).
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let allowed = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let first = try #require(allowed.dropFirst("Cpus_allowed_list:".count)
            .split(whereSeparator: { !$0.isNumber }).first.map(String.init))
        let cpu = CPUFeatures.current
        let p = Process()
        p.executableURL = URL(fileURLWithPath: taskset)
        p.arguments = ["-c", first, CommandLineTests.binary.path, "info", "--json", "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let info = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(info["cores"] as? Int == 1)
        #expect(info["online_cores"] as? Int == cpu.onlineCores)
        #endif
    }

    /// The limits are read once per process, not at each call: the array
    /// forms and a fresh workspace check the memory before they allocate,
    /// and reading the cgroup's files there cost small calls more than their
    /// work. Counted as the calling thread's read system calls
    /// (`/proc/thread-self/io`), which each file read adds to.
    @Test func callsReadNoFiles() throws {
        #if os(Linux)
        let io = "/proc/thread-self/io"
        guard FileManager.default.isReadableFile(atPath: io) else {
            print("callsReadNoFiles: skipped (no \(io))")
            return
        }
        func readCalls() throws -> Int {
            let text = try String(contentsOfFile: io, encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("syscr:") })
            return try #require(Int(line.dropFirst("syscr:".count).trimmingCharacters(in: .whitespaces)))
        }
        let k = 64, n = 16
        let weights = (0..<n * k).map { Float($0 % 13) / 13 - 0.5 }, x = (0..<2 * k).map { Float($0 % 7) - 3 }
        let layer = try QuantizedLinear(weights: weights, outputChannels: n, inputChannels: k, bias: nil, mode: .dynamic(.perRow))
        _ = try layer(x, rows: 2, threads: 1)
        let packed = try PackedWeights(weights: [Int8](repeating: 5, count: n * k), outputChannels: n, inputChannels: k,
                                       scales: .perTensor(0.01))
        let q = [UInt8](repeating: 3, count: 2 * k)
        let before = try readCalls()
        for _ in 0..<20 {
            _ = try layer(x, rows: 2, threads: 1)  // a fresh workspace and a result array each time
            _ = try packed.gemmDynamic(q, rows: 2, rowScales: [0.5, 0.25], rowZeroPoints: [3, 0], threads: 1)
        }
        let reads = try readCalls() - before
        // Reading the counter itself takes a few.
        #expect(reads <= 4, "40 calls made \(reads) read system calls")
        #endif
    }
}
