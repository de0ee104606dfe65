import Foundation
import Testing
import TestSupport

/// docs/TUTORIAL.md cannot rot: every line of its `sh` blocks runs, in order, in real labs,
/// and each `⇒ "text"` and `exit N` its comments state is checked.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct TutorialTests {
    typealias Step = DocSteps.Step

    @Test func everyStepRunsAsPrinted() async throws {
        let steps = DocSteps.steps(try DocSteps.document("docs/TUTORIAL.md"))
        #expect(steps.count >= 50 && steps.filter { !$0.expected.isEmpty }.count >= 30, "the tutorial's runnable steps were not found")
        #expect(Set(DocSteps.labNames(steps)).isSuperset(of: ["pm", "cx", "sw", "il"]), "the tutorial's labs were not found")
        try? FileManager.default.removeItem(atPath: "/tmp/cxllab-tutorial")
        try await DocSteps.run(steps, source: "the tutorial")
    }
}

/// How documents' steps are read, without a lab.
@Suite struct DocStepsTests {
    @Test func theMarkersAreRead() {
        let text = """
            ```sh
            cxllab exec pm -- ndctl list -R      # ⇒ "available_size":1073741824
            # a comment line
            cxllab run t.yaml --orders 2   # exit 1 ⇒ "fsdev_dax bound"
            ```
            ```shell
            cxllab run --kernel build:.
            ```
            """
        #expect(DocSteps.steps(text) == [
            DocSteps.Step(command: "cxllab exec pm -- ndctl list -R      # ⇒ \"available_size\":1073741824", expected: ["\"available_size\":1073741824"], exit: 0),
            DocSteps.Step(command: "cxllab run t.yaml --orders 2   # exit 1 ⇒ \"fsdev_dax bound\"", expected: ["fsdev_dax bound"], exit: 1),
        ])
        #expect(DocSteps.fenceKinds(text) == ["sh", "shell"])
    }

    @Test func labNamesComeFromTheStepsThatMakeThem() {
        let steps = DocSteps.steps("""
            ```sh
            cxllab up topologies/a.yaml --name pm --module x   # ⇒ "cxllab exec pm"
            cxllab exec pm -- true
            cxllab up topologies/b.yaml --name cx
            cxllab up topologies/a.yaml --name pm
            ```
            """)
        #expect(DocSteps.labNames(steps) == ["pm", "cx"])
    }
}
