import Foundation
import Kernels
import Scenarios
@testable import TestBuilds
import Testing
import TestSupport

/// The pages a newcomer reads first (docs/BEFORE-YOU-START.md and the rest) say only what is
/// true here: their commands run, and the lists they give are the code's.
enum OnboardingPages {
    /// In reading order; the ones with `sh` blocks are run in this order too.
    static let all = ["docs/BEFORE-YOU-START.md", "docs/KERNEL-CONFIG.md", "docs/TROUBLESHOOTING.md",
                      "docs/ENVIRONMENT.md", "docs/GLOSSARY.md", "docs/SAMPLE-REPORT.md"]

    /// The rows of the Markdown table between `<!-- marker -->` and `<!-- /marker -->`, each a
    /// list of its cells with code quotes taken off; the header and its rule are left out.
    static func table(_ markdown: String, marker: String) -> [[String]] {
        guard let start = markdown.range(of: "<!-- \(marker) -->"), let end = markdown.range(of: "<!-- /\(marker) -->") else { return [] }
        return markdown[start.upperBound..<end.lowerBound].split(separator: "\n").dropFirst(2).map { line in
            line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
        }
    }
}

/// Every page's commands run, in real labs, as printed.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct OnboardingPagesTests {
    @Test func everyCommandRunsAsPrinted() async throws {
        for page in OnboardingPages.all {
            let steps = DocSteps.steps(try DocSteps.document(page))
            guard !steps.isEmpty else { continue }
            try await DocSteps.run(steps, source: page)
        }
    }
}

@Suite struct OnboardingPageFormTests {
    /// A command on these pages is in an `sh` block, which the test above runs; a `text`
    /// block is output. Nothing is shown that no test runs.
    @Test func everyBlockIsRunOrOutput() throws {
        var runnable = 0
        for page in OnboardingPages.all {
            let text = try DocSteps.document(page)
            let kinds = DocSteps.fenceKinds(text)
            #expect(kinds.allSatisfy { $0 == "sh" || $0 == "text" }, "\(page) has a block that is neither run (sh) nor output (text): \(kinds)")
            runnable += DocSteps.steps(text).count
        }
        #expect(runnable >= 10, "the pages' runnable steps were not found")
    }

    @Test func theReadmeLinksEveryPage() throws {
        let readme = try DocSteps.document("README.md")
        for page in OnboardingPages.all {
            #expect(readme.contains("(\(page))"), "README.md does not link \(page)")
        }
    }

    /// The sample is a real report of an earlier build: a step the scenario has gained since
    /// would be missing from it, and from its reading.
    @Test func theSampleReportHasEveryStep() throws {
        let page = try DocSteps.document("docs/SAMPLE-REPORT.md")
        guard let start = page.range(of: "Steps (observations"), let end = page.range(of: "Violations:") else {
            Issue.record("docs/SAMPLE-REPORT.md has no Steps section")
            return
        }
        let stepLines = page[start.upperBound..<end.lowerBound].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for step in ProbeStep.allCases {
            #expect(stepLines.contains { $0.hasPrefix(step.rawValue + " ") }, "the sample report has no line for the step \(step.rawValue); take a new one")
        }
        #expect(DocSteps.steps(page).count == 1, "the sample's one command was not found")
    }

    @Test func theGlossaryHasTheWordsTheReportsUse() throws {
        let glossary = try DocSteps.document("docs/GLOSSARY.md")
        for term in ["lab", "cell", "variant", "stand-in", "kmem-type", "n/a", "could not run", "pinned kernel"] {
            #expect(glossary.contains("**\(term)**"), "docs/GLOSSARY.md does not define \(term)")
        }
    }
}

/// docs/KERNEL-CONFIG.md is the code's list: `KernelRequirements` for labs, the test
/// modules' config checks for `suite ndctl`.
@Suite struct KernelConfigPageTests {
    @Test func theLabTableIsTheCodesList() throws {
        let rows = OnboardingPages.table(try DocSteps.document("docs/KERNEL-CONFIG.md"), marker: "lab-options")
        let documented = Set(rows.map { $0.prefix(4).joined(separator: " ") })
        // A release after 6.2, so the hypervisor bit's option is among them; the value is what
        // make:'s fragment sets, modules where the scenarios unload the driver.
        let required = Set(KernelRequirements.requirements(for: KernelRequirements.features, release: "99.0").map {
            "CONFIG_\($0.option) \($0.feature) \($0.effect.rawValue) \(KernelConfigFragment.modular.contains($0.option) ? "m" : "y or m")"
        })
        #expect(rows.count > 20, "the table was not found")
        #expect(required.subtracting(documented).isEmpty, "the code requires, the page does not list: \(required.subtracting(documented).sorted())")
        #expect(documented.subtracting(required).isEmpty, "the page lists, the code does not require: \(documented.subtracting(required).sorted())")
    }

    @Test func theTestModuleTableIsTheirConfigChecks() throws {
        let rows = OnboardingPages.table(try DocSteps.document("docs/KERNEL-CONFIG.md"), marker: "test-module-options")
        let documented = Set(rows.map { $0.prefix(3).joined(separator: " ") })
        var required: Set<String> = []
        for set in KernelTestModules.allCases {
            required.formUnion(set.requiredModules.map { "CONFIG_\($0) \(set.rawValue) m" })
            required.formUnion(set.requiredEnabled.map { "CONFIG_\($0) \(set.rawValue) y or m" })
            required.formUnion(set.requiredModulesIfSet.map { "CONFIG_\($0) \(set.rawValue) m, where set" })
        }
        #expect(rows.count > 10, "the table was not found")
        #expect(documented == required, "page and code differ: only on the page \(documented.subtracting(required).sorted()), only in the code \(required.subtracting(documented).sorted())")
    }

    /// What `kernel show` checks is what the page lists, less the hypervisor bit's option.
    @Test func kernelShowChecksEveryFeatureButTheHypervisorBit() {
        #expect(KernelRequirements.features.contains(KernelRequirements.hypervisorBit))
        #expect(KernelRequirements.requirements(for: [KernelRequirements.hypervisorBit, "cxl"], release: "6.1.0-56-amd64")
            .allSatisfy { $0.option != "CXL_REGION_INVALIDATION_TEST" })
    }
}

/// docs/ENVIRONMENT.md lists every variable the code reads, and only those.
@Suite struct EnvironmentPageTests {
    /// Keys of dictionaries that are not cxllab's environment: the environment meson gives
    /// ndctl's tests, which cxllab passes on to the guest (and its tests check).
    static let notCxllabsEnvironment: Set<String> = ["CXL", "NDCTL", "DATA_PATH"]

    static func codeFiles() throws -> [(path: String, text: String)] {
        let root = LabSessionTests.root
        var files: [(String, String)] = []
        for folder in ["Sources", "Tests", "scripts"] {
            guard let walker = FileManager.default.enumerator(atPath: root + "/" + folder) else { continue }
            for case let relative as String in walker where relative.hasSuffix(".swift") || relative.hasSuffix(".sh") {
                let path = folder + "/" + relative
                guard !path.hasPrefix("Tests/LabTests/OnboardingPagesTests.swift") else { continue }
                files.append((path, try String(contentsOfFile: root + "/" + path, encoding: .utf8)))
            }
        }
        files.append(("Makefile", try String(contentsOfFile: root + "/Makefile", encoding: .utf8)))
        return files
    }

    static func matches(_ pattern: String, in text: String, group: Int) throws -> [String] {
        let expression = try NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: group), in: text).map { String(text[$0]) }
        }
    }

    @Test func everyVariableReadIsDocumentedAndNoOther() throws {
        let page = try DocSteps.document("docs/ENVIRONMENT.md")
        let documented = Set(OnboardingPages.table(page, marker: "variables").compactMap(\.first))
        #expect(documented.count >= 10, "the table was not found")
        var read: [String: String] = [:]
        for file in try Self.codeFiles() {
            for name in try Self.matches(#"\b(CXLLAB_[A-Z0-9_]+)\b"#, in: file.text, group: 1) { read[name] = file.path }
            // Other variables, where Swift reads an environment by a literal key.
            for name in try Self.matches(#"environment\["([A-Z_][A-Z0-9_]*)"\](?!\s*=[^=])"#, in: file.text, group: 1)
            where !Self.notCxllabsEnvironment.contains(name) { read[name] = file.path }
        }
        for (name, path) in read.sorted(by: { $0.key < $1.key }) {
            #expect(documented.contains(name), "\(path) reads \(name); docs/ENVIRONMENT.md does not list it")
        }
        for name in documented.sorted() {
            #expect(read[name] != nil, "docs/ENVIRONMENT.md lists \(name), which no code reads")
        }
    }
}
