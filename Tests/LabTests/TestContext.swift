import Foundation
import HostSupport
import LabRuntime
import TestSupport

extension LabContext {
    /// A context made as cxllab makes its own, from this test process's environment
    /// (CXLLAB_LABS_DIR, CXLLAB_CACHE and the rest), with the test process's shared guest slots
    /// and a session registry of its own; `cache` instead of the environment's when given.
    static func forTests(cache: CacheDirectory? = nil) -> LabContext {
        let environment = ProcessInfo.processInfo.environment
        return LabContext(settings: .from(environment: environment), cache: cache ?? CacheDirectory.resolve(environment: environment),
                          guestSlots: TestGuestSlots.shared)
    }
}

extension AgentBinary {
    /// The agent as cxllab finds it: where CXLLAB_AGENT in the test's environment says, else
    /// beside the test's build products (where the cxllab executable is too).
    static func locateForTests() throws -> String {
        try locate(explicit: LabContext.forTests().settings.agentExecutable)
    }
}
