import Foundation
@testable import Matrix
import Testing

/// docs/MATRICES.md stays true: every `yaml` block in it is a matrix file that reads clean,
/// but one marked `<!-- refused: FILE -->`, whose errors are the `text` block after it, word
/// for word.
@Suite struct MatrixDocsTests {
    struct Block {
        var language: String
        var text: String
        /// The file name of a refused example.
        var refusedAs: String?
    }

    static func blocks() throws -> [Block] {
        let page = try String(contentsOfFile: LabSessionTests.root + "/docs/MATRICES.md", encoding: .utf8)
        var blocks: [Block] = []
        var current: Block?
        var refusedAs: String?
        for line in page.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if var block = current {
                if line == "```" {
                    blocks.append(block)
                    current = nil
                } else {
                    block.text += line + "\n"
                    current = block
                }
            } else if line.hasPrefix("```") {
                current = Block(language: String(line.dropFirst(3)), text: "", refusedAs: refusedAs)
                refusedAs = nil
            } else if line.hasPrefix("<!-- refused: "), line.hasSuffix(" -->") {
                refusedAs = String(line.dropFirst("<!-- refused: ".count).dropLast(" -->".count))
            }
        }
        return blocks
    }

    @Test func everyExampleReadsClean() throws {
        let examples = try Self.blocks().filter { $0.language == "yaml" && $0.refusedAs == nil }
        #expect(examples.count >= 3)
        for example in examples {
            #expect(throws: Never.self, "\(example.text)") { try MatrixFile.parse(yaml: example.text, file: "docs/MATRICES.md") }
        }
    }

    @Test func theRefusedExampleGivesTheErrorsThePageShows() throws {
        let blocks = try Self.blocks()
        let index = try #require(blocks.firstIndex { $0.refusedAs != nil })
        let shown = try #require(blocks.dropFirst(index + 1).first { $0.language == "text" })
        let error = try #require(throws: MatrixError.self) { try MatrixFile.parse(yaml: blocks[index].text, file: blocks[index].refusedAs ?? "") }
        #expect(error.description + "\n" == shown.text)
    }
}
