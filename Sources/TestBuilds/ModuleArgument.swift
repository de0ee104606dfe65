import Foundation
import GuestImage

/// A `--module` argument checked before anything is fetched or built, by the forms
/// `ModuleBuilder.resolve` takes: a mistyped path is the user's to fix, said at once, not
/// after a kernel download.
public enum ModuleArgument {
    /// A path has a slash, or is `.` or `..` (never a module's name); anything else is a bare
    /// word naming an in-tree module.
    public static func isPath(_ argument: String) -> Bool {
        argument.contains("/") || argument == "." || argument == ".."
    }

    /// What is wrong with the argument (its path, without `:param=value` parameters), or nil.
    public static func problem(_ argument: String) -> String? {
        guard isPath(argument) else {
            return ModuleIndex.isModuleName(argument) ? nil : ModuleBuildError.notAModuleName(argument).description
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder) else {
            return ModuleBuildError.noSuchPath(argument).description
        }
        if isFolder.boolValue {
            let build = ["Kbuild", "Makefile"].contains { FileManager.default.fileExists(atPath: argument + "/" + $0) }
            return build ? nil : "--module " + ModuleBuildError.noKbuildFile(argument).description
        }
        let name = (argument as NSString).lastPathComponent
        return [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].contains(where: name.hasSuffix) ? nil
            : "--module \(argument): a module file's name ends in .ko; give a .ko or a module source folder (with a Kbuild)"
    }

    /// The names of the modules an argument gives, as far as can be read without building:
    /// a bare word's own, a .ko's file name, a source folder's `obj-m` objects.
    public static func moduleNames(_ argument: String) -> [String] {
        guard isPath(argument) else { return [argument] }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder) else { return [] }
        guard isFolder.boolValue else { return [ModuleIndex.name(ofPath: argument)] }
        let text = ["Kbuild", "Makefile"].compactMap { try? String(contentsOfFile: argument + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
        return text.split(separator: "\n").filter { $0.contains("obj-m") }.flatMap { line in
            line.split(whereSeparator: { " \t:+=".contains($0) }).filter { $0.hasSuffix(".o") }.map { ModuleIndex.name(ofPath: String($0.dropLast(2))) }
        }
    }
}
