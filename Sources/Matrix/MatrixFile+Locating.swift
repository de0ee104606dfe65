import Foundation
import HostSupport

extension MatrixFile {
    /// The matrix file a command line names: the path as given (from the working folder), else
    /// the same relative path under each project root. A name found nowhere is refused with
    /// where it was looked for and the nearest matrix the project has.
    public static func locate(_ file: String, projectRoots: [String]) throws(MatrixError) -> String {
        let fm = FileManager.default
        if file.hasPrefix("/") || fm.fileExists(atPath: file) { return file }
        if let found = projectRoots.map({ $0 + "/" + file }).first(where: { fm.fileExists(atPath: $0) }) { return found }
        let shipped = Set(projectRoots.flatMap { root in
            ((try? fm.contentsOfDirectory(atPath: root + "/matrices")) ?? []).filter { $0.hasSuffix(".yaml") }.map { "matrices/" + $0 }
        }).sorted()
        let looked = (["the working folder"] + projectRoots).joined(separator: ", ")
        let guess = Spelling.nearest(to: file, in: shipped).map { "did you mean \($0)? " } ?? ""
        let choices = shipped.isEmpty ? "give the path of a matrix file" : "the project's matrices are \(shipped.joined(separator: ", "))"
        throw MatrixError("\(file): no such matrix file (looked in \(looked)); fix: \(guess)\(choices)")
    }
}
