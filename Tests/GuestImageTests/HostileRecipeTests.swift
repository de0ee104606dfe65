import Foundation
@testable import GuestImage
import Testing
import TestSupport

/// Image recipes built to make reading slow or crash: each is refused quickly, naming the
/// file and the place.
@Suite struct HostileRecipeTests {
    static let header = "name: x\nbinaries: [/bin/sh]\nmodules: {boot: [virtio_pci]}\n"

    /// The refusal of `text` as images/hostile.yaml, failing the test when it takes 3 s or more.
    static func refusal(_ text: String) throws -> String {
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: RecipeError.self) { try ImageRecipe.parse(text, file: "images/hostile.yaml") }
        let elapsed = clock.now - start
        #expect(elapsed < .seconds(3), "refused after \(elapsed)")
        return error.description
    }

    @Test func aBillionLaughsIsRefusedQuicklyWithItsPlace() throws {
        let message = try Self.refusal(Self.header + HostileYAML.laughs())
        #expect(message.hasPrefix("images/hostile.yaml:4:\(HostileYAML.firstAnchorColumn): "), "\(message)")
        #expect(message.contains("fix: write the value out where the alias stands"))
    }

    @Test func deepNestingIsRefusedWithoutACrash() throws {
        let message = try Self.refusal(Self.header + "links: " + HostileYAML.deepNesting())
        #expect(message.hasPrefix("images/hostile.yaml:4:9: "), "\(message)")
    }

    @Test func anOversizedFileIsRefused() throws {
        let message = try Self.refusal(Self.header + HostileYAML.oversized())
        #expect(message.hasPrefix("images/hostile.yaml:1:1: "), "\(message)")
    }

    @Test func unknownKeysStillNameTheirPlaceLikeACompiler() throws {
        let message = try Self.refusal("name: x\nbinaries: []\nmodules: {}\nbinarys: [/bin/sh]\n")
        #expect(message.hasPrefix("images/hostile.yaml:4:1: unknown key 'binarys'"), "\(message)")
    }
}
