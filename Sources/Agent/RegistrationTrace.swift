#if canImport(Glibc)
import Glibc
#endif

/// The order drivers really register on a bus, from the kernel itself: a kprobe event on
/// `bus_add_driver` (the function that puts a driver on its bus's list, the list the bus walks
/// to match a new device), filtered to one bus, on the monotonic trace clock so its times
/// line up with the agent's. /proc/modules is no substitute under concurrency: a module is
/// listed when it is loaded, before its init function registers its driver.
enum RegistrationTrace {
    static let root = "/sys/kernel/tracing"
    static let event = "events/cxllab/drvreg"
    /// x86-64: the first argument in %di; `struct device_driver` starts with `name` and then
    /// `bus` (whose first field is its name), unchanged from 6.1 to 7.3.
    static let definition = "p:cxllab/drvreg bus_add_driver name=+0(+0(%di)):string bus=+0(+0(+8(%di))):string\n"

    /// Arms the trace for `bus` and empties the buffer; the reason when it cannot.
    static func start(bus: String, files: GuestFiles) -> String? {
        if !files.exists(root + "/trace") {
            _ = mkdir(files.path(root), 0o755)
            if mount("nodev", files.path(root), "tracefs", 0, nil) != 0 {
                return "tracefs cannot be mounted at \(root): \(String(cString: strerror(errno)))"
            }
        }
        if !files.exists(root + "/" + event) {
            guard files.exists(root + "/kprobe_events") else { return "the kernel has no kprobe events (CONFIG_KPROBE_EVENTS)" }
            // Without O_TRUNC, kprobe_events appends.
            if let failure = files.write(root + "/kprobe_events", definition) { return "the kprobe on bus_add_driver was refused: \(failure)" }
        }
        for (file, value) in [("trace_clock", "mono"), (event + "/filter", "bus==\"\(bus)\""), (event + "/enable", "1")] {
            if let failure = files.write(root + "/" + file, value) { return failure }
        }
        let fd = open(files.path(root + "/trace"), O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { return "cannot empty \(root)/trace: \(String(cString: strerror(errno)))" }
        close(fd)
        return nil
    }

    /// The registrations in the buffer, oldest first, with times on the monotonic clock; the
    /// event is disabled again.
    static func read(files: GuestFiles) -> [(driver: String, time: Double)] {
        let text = files.read(root + "/trace", limit: 1 << 20) ?? ""
        _ = files.write(root + "/" + event + "/enable", "0")
        return parse(text)
    }

    /// `modprobe-200 [000] .N... 29.250154: drvreg: (bus_add_driver+0x4/0x240) name="fsdev_dax" bus="dax"`
    static func parse(_ text: String) -> [(driver: String, time: Double)] {
        text.split(separator: "\n").compactMap { line -> (String, Double)? in
            let words = line.split(separator: " ")
            guard line.first != "#", let marker = words.firstIndex(of: "drvreg:"), marker > words.startIndex,
                  let time = Double(words[marker - 1].dropLast()),
                  let field = words.first(where: { $0.starts(with: "name=\"") }) else { return nil }
            // A driver name has no spaces or quotes.
            return (String(field.dropFirst(6).prefix { $0 != "\"" }), time)
        }.sorted { $0.1 < $1.1 }
    }
}
