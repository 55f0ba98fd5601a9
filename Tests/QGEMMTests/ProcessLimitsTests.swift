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
    func limits(cgroup: String, files: [String: String]) throws -> (cpus: Double, memory: Int64) {
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
        qg_cgroup_limits(cgroupFile.path, root.path, &cpus, &memory)
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

    /// The cores a call on all cores uses follow the affinity mask, and the
    /// memory the checks allow follows the physical memory at most.
    @Test func coresFollowTheAffinityMask() throws {
        let cpu = CPUFeatures.current
        #expect(cpu.cores >= 1 && cpu.cores <= cpu.onlineCores)
        #expect(CPUFeatures.usableMemoryBytes() <= ProcessInfo.processInfo.physicalMemory)
        #if os(Linux)
        let taskset = "/usr/bin/taskset"
        guard FileManager.default.isExecutableFile(atPath: taskset) else {
            print("coresFollowTheAffinityMask: skipped the taskset run (no \(taskset))")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: taskset)
        p.arguments = ["-c", "0", CommandLineTests.binary.path, "info", "--json", "-"]
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
}
