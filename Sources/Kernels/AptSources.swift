import Foundation

/// One `deb` line of an apt configuration: a mirror, its suites and components.
public struct AptSource: Sendable, Hashable {
    public var uri: String
    public var suites: [String]
    public var components: [String]
    public var signedBy: String?
    /// `deb` (binary packages) or `deb-src` (source packages).
    public var type = "deb"

    public init(uri: String, suites: [String], components: [String], signedBy: String? = nil, type: String = "deb") {
        self.uri = uri
        self.suites = suites
        self.components = components
        self.signedBy = signedBy
        self.type = type
    }

    /// One line per suite (`deb` lines take one suite each).
    public var lines: [String] {
        suites.map { suite in
            let options = signedBy.map { " [signed-by=\($0)]" } ?? ""
            return "\(type)\(options) \(uri) \(suite) \(components.joined(separator: " "))"
        }
    }
}

/// Reads the host's apt sources (both the one-line and the deb822 formats) so cxllab can reuse
/// the mirrors this host is configured with, without ever changing them.
public enum AptSourcesReader {
    public static func hostSources(root: String = "/etc/apt") -> [AptSource] {
        var sources = parseOneLine(contentsOf: root + "/sources.list")
        let parts = root + "/sources.list.d"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parts))?.sorted() ?? []
        for name in names {
            let path = parts + "/" + name
            if name.hasSuffix(".list") { sources += parseOneLine(contentsOf: path) }
            if name.hasSuffix(".sources") { sources += parseDeb822(contentsOf: path) }
        }
        return sources
    }

    static func parseOneLine(contentsOf path: String) -> [AptSource] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return parseOneLine(text)
    }

    public static func parseOneLine(_ text: String) -> [AptSource] {
        text.split(separator: "\n").compactMap { raw in
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.first == "deb" else { return nil }
            words.removeFirst()
            var signedBy: String?
            if let first = words.first, first.hasPrefix("[") {
                var options: [String] = []
                while let word = words.first {
                    words.removeFirst()
                    options.append(word)
                    if word.hasSuffix("]") { break }
                }
                let joined = options.joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                for option in joined.split(separator: " ") where option.hasPrefix("signed-by=") {
                    signedBy = String(option.dropFirst("signed-by=".count))
                }
            }
            guard words.count >= 2 else { return nil }
            return AptSource(uri: words[0], suites: [words[1]], components: Array(words.dropFirst(2)), signedBy: signedBy)
        }
    }

    static func parseDeb822(contentsOf path: String) -> [AptSource] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return parseDeb822(text)
    }

    public static func parseDeb822(_ text: String) -> [AptSource] {
        let stanzas = text.components(separatedBy: "\n\n")
        return stanzas.flatMap { stanza -> [AptSource] in
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix("#") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard fields["enabled"]?.lowercased() != "no",
                  (fields["types"] ?? "").split(separator: " ").contains("deb") else { return [] }
            let uris = (fields["uris"] ?? "").split(separator: " ").map(String.init)
            let suites = (fields["suites"] ?? "").split(separator: " ").map(String.init)
            let components = (fields["components"] ?? "").split(separator: " ").map(String.init)
            return uris.map { AptSource(uri: $0, suites: suites, components: components, signedBy: fields["signed-by"]) }
        }
    }
}
