#if canImport(Glibc)
import Glibc
#endif

/// File access for /sys, /proc and /dev/kmsg, rooted so tests can point it at a fake tree.
public struct GuestFiles: Sendable {
    public let root: String

    public init(root: String = "") {
        self.root = root
    }

    func path(_ path: String) -> String { root + path }

    public func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(self.path(path), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes like `echo -n value > path`; the errno text on failure (sysfs says no by errno).
    func write(_ path: String, _ value: String) -> String? {
        let fd = open(self.path(path), O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written < 0 { return "writing '\(value)' to \(path): \(String(cString: strerror(errno)))" }
        if written != bytes.count { return "short write of '\(value)' to \(path)" }
        return nil
    }

    func list(_ path: String) -> [String] {
        guard let directory = opendir(self.path(path)) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The last component of a symlink's target (a device's `driver` link names its driver).
    func linkName(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(self.path(path), &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    func exists(_ path: String) -> Bool { access(self.path(path), F_OK) == 0 }
}
