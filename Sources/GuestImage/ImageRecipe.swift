import Foundation
import Yams

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

    public static let knownKeys: Set<String> = ["name", "description", "binaries", "links", "modules", "files", "suite", "packages"]

    /// The module names for a set of features, boot modules first, each name once.
    public func moduleNames(for features: Set<String>) -> [String] {
        var seen: Set<String> = []
        let groups = ["boot"] + features.sorted()
        return groups.flatMap { modules[$0] ?? [] }.filter { seen.insert($0).inserted }
    }
}

public struct RecipeError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

extension ImageRecipe {
    public static func load(path: String) throws -> ImageRecipe {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RecipeError(file: path, message: "cannot be read")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ImageRecipe {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw RecipeError(file: file, message: "is not valid YAML: \(error)")
        }
        guard let mapping = node?.mapping else { throw RecipeError(file: file, message: "must be a mapping with name, binaries and modules") }
        for (key, _) in mapping {
            guard let name = key.string, knownKeys.contains(name) else {
                let mark = key.mark.map { "\($0.line):\($0.column): " } ?? ""
                throw RecipeError(file: file, message: "\(mark)unknown key '\(key.string ?? "?")'; known keys: \(knownKeys.sorted().joined(separator: ", "))")
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
