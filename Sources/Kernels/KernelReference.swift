/// How a user names a kernel: `debian:<release or suite>`, `build:<dir>`, `make:<dir>` or
/// `files:<bzImage>[,modules=<dir>][,config=<file>]`.
public enum KernelReference: Sendable, Hashable, CustomStringConvertible {
    /// A Debian kernel by its `uname -r` (6.1.0-56-amd64, 6.12.95+deb12-amd64, ...).
    case debianRelease(String)
    /// The newest Debian kernel of a suite (bookworm, bookworm-backports, trixie-backports).
    case debianSuite(String)
    /// A kernel build tree, imported as it is (whatever was built last).
    case buildTree(String)
    /// A kernel tree cxllab builds first (`KernelTreeBuild`), then imports what that build
    /// made: what `git bisect run` needs, one build per commit.
    case madeTree(String)
    /// A bzImage with optional modules folder and config.
    case files(bzImage: String, modules: String?, config: String?)

    public static let suiteAliases = ["bookworm", "bookworm-backports", "trixie", "trixie-backports"]

    /// Whether a kernel release (`uname -r`) can be a folder name in the cache: its own
    /// characters only, and nothing that climbs out or reads as an option.
    public static func isReleaseName(_ release: String) -> Bool {
        !release.isEmpty && release.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.~-_".contains($0)) }
            && !release.hasPrefix(".") && !release.hasPrefix("-")
    }

    public init(parsing text: String) throws(KernelReferenceError) {
        guard let colon = text.firstIndex(of: ":") else { throw .missingScheme(text) }
        let scheme = String(text[..<colon])
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty else { throw .emptyValue(text) }
        switch scheme {
        case "debian":
            guard Self.isReleaseName(value) else { throw .badRelease(text) }
            self = Self.suiteAliases.contains(value) ? .debianSuite(value) : .debianRelease(value)
        case "build":
            self = .buildTree(value)
        case "make":
            self = .madeTree(value)
        case "files":
            let parts = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let image = parts.first, !image.isEmpty else { throw .emptyValue(text) }
            var modules: String?
            var config: String?
            for part in parts.dropFirst() {
                if part.isEmpty { continue }
                if part.hasPrefix("modules=") { modules = String(part.dropFirst(8)) }
                else if part.hasPrefix("config=") { config = String(part.dropFirst(7)) }
                else { throw .unknownFilesOption(text, part) }
            }
            self = .files(bzImage: image, modules: modules, config: config)
        default:
            throw .unknownScheme(text, scheme)
        }
    }

    public var description: String {
        switch self {
        case .debianRelease(let release): "debian:\(release)"
        case .debianSuite(let suite): "debian:\(suite)"
        case .buildTree(let path): "build:\(path)"
        case .madeTree(let path): "make:\(path)"
        case .files(let image, let modules, let config):
            (["files:\(image)"] + [modules.map { "modules=\($0)" }, config.map { "config=\($0)" }].compactMap { $0 })
                .joined(separator: ",")
        }
    }
}

public enum KernelReferenceError: Error, Sendable, CustomStringConvertible {
    case missingScheme(String)
    case emptyValue(String)
    case unknownScheme(String, String)
    case unknownFilesOption(String, String)
    case badRelease(String)

    public var description: String {
        let forms = "write debian:<release|bookworm|bookworm-backports|trixie-backports>, build:<dir>, make:<dir> "
            + "or files:<bzImage>[,modules=<dir>][,config=<file>]"
        switch self {
        case .missingScheme(let text): return "kernel '\(text)' names no kind of kernel: \(forms)"
        case .emptyValue(let text): return "kernel '\(text)' is empty after its colon: \(forms)"
        case .unknownScheme(let text, let scheme): return "kernel '\(text)': unknown kind '\(scheme)'; \(forms)"
        case .badRelease(let text):
            return "kernel '\(text)': a Debian release is letters, digits and + . ~ - _ (as `uname -r` prints it, e.g. debian:6.12.95+deb12-amd64)"
        case .unknownFilesOption(let text, let option):
            return "kernel '\(text)': unknown option '\(option)'; files: takes modules=<dir> and config=<file>"
        }
    }
}
