import Foundation

/// How this machine's idle CPUs wait, read from Linux's sysfs, reported beside latency figures.
///
/// On a virtual machine whose guest uses the `haltpoll` cpuidle driver, `guest_halt_poll_ns` is
/// how long an idle vCPU polls before it halts. With `0` it halts at once, and every wake-up of a
/// thread on another vCPU (a reply reaching an event loop, a task resumed on another thread, a
/// `redis-server` woken by a request) pays a VM exit and entry. On this project's 2-vCPU CI machine
/// that is so: a single-caller `GET` p50 of this client went from about 94-112 µs to 24 µs with
/// `guest_halt_poll_ns` set to 200000 for a run (Benchmarks/README, "Idle vCPUs halt at once").
/// The figure explains round-trip latencies; the benchmarks never change it.
struct IdleWakeupPolicy {
    /// The cpuidle driver (`/sys/devices/system/cpu/cpuidle/current_driver`), if readable.
    var driver: String?
    /// `guest_halt_poll_ns` of the `haltpoll` driver, if it is loaded and the value is a
    /// non-negative integer.
    var haltPollNanoseconds: Int?

    /// Reads the current machine's policy (nothing on systems without these files).
    static func current(root: String = "/sys") -> IdleWakeupPolicy {
        func read(_ path: String) -> String? {
            guard let text = try? String(contentsOfFile: root + path, encoding: .utf8) else { return nil }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
        let driver = read("/devices/system/cpu/cpuidle/current_driver")
        let pollNanoseconds = read("/module/haltpoll/parameters/guest_halt_poll_ns").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        return IdleWakeupPolicy(driver: driver, haltPollNanoseconds: pollNanoseconds)
    }

    /// One line for a benchmark's table; `nil` when nothing could be read.
    var summary: String? {
        guard let driver else { return nil }
        guard driver.contains("haltpoll"), let haltPollNanoseconds else { return "machine: cpuidle driver \(driver)" }
        if haltPollNanoseconds == 0 {
            return "machine: cpuidle haltpoll with guest_halt_poll_ns=0: an idle vCPU halts at once, so each cross-vCPU wake-up pays a VM exit (round trips here are mostly wake-ups; see Benchmarks/README)"
        }
        return "machine: cpuidle haltpoll, an idle vCPU polls up to \(haltPollNanoseconds) ns before it halts"
    }

    /// `cpuidle_driver` and `guest_halt_poll_ns` for a benchmark's JSON (`null` when unknown).
    var jsonFields: [String: Any] {
        ["cpuidle_driver": driver ?? NSNull(), "guest_halt_poll_ns": haltPollNanoseconds ?? NSNull()]
    }
}
