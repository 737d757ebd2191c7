import CScan

/// How many cores this process may use: the CPUs its affinity mask allows, capped by a cgroup
/// CPU quota (a container's `--cpus`, a Kubernetes CPU limit), rounded up; at least 1.
package func availableCores() -> Int {
    var cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #if os(Linux)
    let allowed = Int(cscan_allowed_cpus())
    if allowed > 0 { cores = min(cores, allowed) }
    if let quota = cgroupCPUQuota() { cores = min(cores, max(1, Int(quota.rounded(.up)))) }
    #endif
    return max(cores, 1)
}

/// The CPU quota of this process's cgroup, in cores: cgroup v2's `cpu.max` ("QUOTA PERIOD" or
/// "max PERIOD") or v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`; nil when unlimited.
func cgroupCPUQuota() -> Double? {
    func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).trimmingSpaces
    }
    // The process's own cgroup (v2: one line "0::/PATH").
    var v2Path = "/sys/fs/cgroup"
    if let lines = read("/proc/self/cgroup")?.split(separator: "\n"),
       let unified = lines.first(where: { $0.hasPrefix("0::") }) {
        let relative = unified.dropFirst(3)
        if relative != "/" { v2Path += relative }
    }
    for path in [v2Path + "/cpu.max", "/sys/fs/cgroup/cpu.max"] {
        if let text = read(path) {
            let parts = text.split(separator: " ")
            guard parts.count == 2, parts[0] != "max", let quota = Double(parts[0]), let period = Double(parts[1]),
                  quota > 0, period > 0 else { return nil }
            return quota / period
        }
    }
    for dir in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
        if let q = read(dir + "/cpu.cfs_quota_us").flatMap({ Double($0) }),
           let p = read(dir + "/cpu.cfs_period_us").flatMap({ Double($0) }) {
            return q > 0 && p > 0 ? q / p : nil
        }
    }
    return nil
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.last, c == "\n" || c == " " { s = s.dropLast() }
        return String(s)
    }
}
