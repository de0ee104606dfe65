import HostSupport

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
    public static let schemes = ["debian", "build", "make", "files"]

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
            // Every Debian kernel release starts with its version (`uname -r`: 6.12.95+deb12-amd64);
            // a word that does not is a suite misspelt, and the archive would answer it only
            // with its ~200 releases.
            guard Self.suiteAliases.contains(value) || value.first?.isNumber == true else { throw .unknownSuite(text, value) }
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
    /// `debian:` followed by a word that is neither a suite nor a release.
    case unknownSuite(String, String)

    /// What is wrong, naming the text as given.
    public var problem: String {
        switch self {
        case .missingScheme(let text): "kernel '\(text)' names no kind of kernel"
        case .emptyValue(let text): "kernel '\(text)' is empty after its colon"
        case .unknownScheme(let text, let scheme): "kernel '\(text)': unknown kind '\(scheme)'"
        case .badRelease(let text): "kernel '\(text)': a Debian release is letters, digits and + . ~ - _"
        case .unknownFilesOption(let text, let option): "kernel '\(text)': unknown option '\(option)'"
        case .unknownSuite(let text, let word): "kernel '\(text)': Debian has no suite '\(word)', and a release starts with its version"
        }
    }

    /// How to write it instead, with the nearest right spelling where there is one.
    public var fix: String {
        let forms = "write debian:<release|\(KernelReference.suiteAliases.joined(separator: "|"))>, build:<dir>, make:<dir> or files:<bzImage>[,modules=<dir>][,config=<file>]"
        switch self {
        case .missingScheme, .emptyValue: return forms
        case .unknownScheme(let text, let scheme):
            let rest = text.drop { $0 != ":" }.dropFirst()
            return (Spelling.nearest(to: scheme, in: KernelReference.schemes).map { "did you mean '\($0):\(rest)'? " } ?? "") + forms
        case .badRelease: return "write it as `uname -r` prints it, e.g. debian:6.12.95+deb12-amd64"
        case .unknownFilesOption: return "files: takes modules=<dir> and config=<file>"
        case .unknownSuite(_, let word):
            return (Spelling.nearest(to: word, in: KernelReference.suiteAliases).map { "did you mean 'debian:\($0)'? " } ?? "")
                + "the suites are \(KernelReference.suiteAliases.joined(separator: ", ")); a release is as `uname -r` prints it (debian:6.12.95+deb12-amd64)"
        }
    }

    public var description: String { "\(problem); \(fix)" }
}
