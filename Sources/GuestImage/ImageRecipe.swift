import Foundation
import Yams
import YAMLGuard

/// What goes into a guest image, from a YAML file under images/.
public struct ImageRecipe: Sendable, Codable, Hashable {
    public struct FileEntry: Sendable, Codable, Hashable {
        public var path: String
        public var content: String
        public var mode: UInt32?
    }

    public var name: String
    public var description: String?
    /// Guest paths of the programs to include; each comes with its interpreter and libraries.
    public var binaries: [String]
    /// Extra guest symlinks: path -> target.
    public var links: [String: String]?
    /// Kernel modules by when they are needed: `boot` always, the others when a topology or
    /// scenario asks for that feature. A name ending in `?` is optional: kernels without it
    /// (neither loadable nor built in) are fine.
    public var modules: [String: [String]]
    public var files: [FileEntry]?
    /// A Debian suite (e.g. trixie) whose packages provide the binaries, with that suite's own
    /// libraries; nil takes them from the host.
    public var suite: String?
    /// With `suite`: the packages to unpack (their dependencies come along).
    public var packages: [String]?
    /// The recipe used instead for a topology with volatile CXL capacity, whose RAM regions
    /// need a newer cxl tool than this recipe's (bookworm's ndctl 76 refuses them).
    public var cxlRAMRecipe: String?
    /// That recipe, loaded by whoever loaded this one (`ProjectFiles`); not part of the file.
    public var cxlRAMAlternative: [ImageRecipe] = []

    enum CodingKeys: String, CodingKey {
        case name, description, binaries, links, modules, files, suite, packages
        case cxlRAMRecipe = "cxl_ram_recipe"
    }

    public static let knownKeys: Set<String> = ["name", "description", "binaries", "links", "modules", "files", "suite", "packages", "cxl_ram_recipe"]

    /// The recipe for a lab: this one, or its `cxl_ram_recipe` when the lab makes CXL RAM
    /// regions and this one's tools cannot.
    public func forLab(needsCXLRAM: Bool) -> ImageRecipe {
        needsCXLRAM ? (cxlRAMAlternative.first ?? self) : self
    }

    /// The module names for a set of features, boot modules first, each name once.
    public func moduleNames(for features: Set<String>) -> [String] {
        var seen: Set<String> = []
        let groups = ["boot"] + features.sorted()
        return groups.flatMap { modules[$0] ?? [] }.filter { seen.insert($0).inserted }
    }
}

public struct RecipeError: Error, Sendable, CustomStringConvertible {
    public let file: String
    /// 1-based line and column, when the problem has a place in the file.
    public let place: (line: Int, column: Int)?
    public let message: String

    public init(file: String, place: (line: Int, column: Int)? = nil, message: String) {
        self.file = file
        self.place = place
        self.message = message
    }

    /// `file:line:column: message`, the form editors link to the place, or `file: message`.
    public var description: String {
        guard let place else { return "\(file): \(message)" }
        return "\(file):\(place.line):\(place.column): \(message)"
    }
}

extension ImageRecipe {
    /// Loads a recipe and the `cxl_ram_recipe` it names (a recipe of the same folder).
    public static func load(path: String) throws -> ImageRecipe {
        var recipe = try loadFile(path)
        if let alternative = recipe.cxlRAMRecipe {
            guard alternative.range(of: #"\A[A-Za-z0-9][A-Za-z0-9_.-]*\z"#, options: .regularExpression) != nil else {
                throw RecipeError(file: path, message: "cxl_ram_recipe '\(alternative)' is not a recipe name; name a recipe of the same folder, e.g. trixie-tools")
            }
            let other = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("\(alternative).yaml").path
            let loaded = try loadFile(other)
            guard loaded.cxlRAMRecipe == nil else {
                throw RecipeError(file: other, message: "is the cxl_ram_recipe of \(path) and must not name one of its own")
            }
            recipe.cxlRAMAlternative = [loaded]
        }
        return recipe
    }

    private static func loadFile(_ path: String) throws -> ImageRecipe {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RecipeError(file: path, message: "cannot be read")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ImageRecipe {
        // Before Yams composes it: aliases as keys make composing exponential, deep nesting
        // recursive; a recipe needs neither.
        do {
            try YAMLGuard.check(text)
        } catch {
            throw RecipeError(file: file, place: (error.line, error.column), message: "\(error.message); fix: \(error.fix)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw RecipeError(file: file, message: "is not valid YAML: \(error)")
        }
        guard let mapping = node?.mapping else { throw RecipeError(file: file, message: "must be a mapping with name, binaries and modules") }
        for (key, _) in mapping {
            guard let name = key.string, knownKeys.contains(name) else {
                throw RecipeError(file: file, place: key.mark.map { ($0.line, $0.column) }, message: "unknown key '\(key.string ?? "?")'; known keys: \(knownKeys.sorted().joined(separator: ", "))")
            }
        }
        do {
            let recipe = try YAMLDecoder().decode(ImageRecipe.self, from: text)
            if recipe.suite != nil, (recipe.packages ?? []).isEmpty {
                throw RecipeError(file: file, message: "'suite: \(recipe.suite!)' needs 'packages:' naming the Debian packages that provide the binaries")
            }
            return recipe
        } catch let error as RecipeError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw RecipeError(file: file, message: "missing key '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw RecipeError(file: file, message: "'\(path)': \(context.debugDescription)")
        } catch {
            throw RecipeError(file: file, message: "\(error)")
        }
    }
}
