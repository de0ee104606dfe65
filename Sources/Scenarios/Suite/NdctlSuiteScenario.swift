import AgentProtocol
import Foundation
import Kernels
import GuestImage
import HostSupport
import LabRuntime
import TestBuilds

/// ndctl's own test suite in a lab: the kernel's test modules (nfit_test, cxl_test) built for
/// the kernel under test, ndctl's tests built from its source, both put into the image, and
/// each test of the chosen suites run in the guest by the agent with its own deadline, as
/// `meson test` would (the list, commands, environment and timeouts are meson's). With
/// `loadFirst`, modules (a stand-in fsdev_dax, a user's driver) load before the dax drivers,
/// so they come first in the dax bus's driver list, as when V9's bug was found.
public struct NdctlSuiteScenario: Scenario {
    public static let allSuites = ["ndctl", "dax", "cxl"]
    /// The dax drivers that go back after the load-first modules, so they register later.
    static let daxDrivers = ["device_dax", "kmem"]

    public var suites: [String]
    /// Test names to run (nil: every test of the suites).
    public var tests: [String]?
    public var modules: [ModuleSpec]
    /// The `--module` arguments as given, for repro commands.
    public var moduleArguments: [String]
    public var loadFirst: [String]
    public var ndctlVersion: String?
    /// The topology and kernel as the user named them, for repro commands.
    public var topologyArgument: String
    /// Multiplies each test's meson timeout, as `meson test --timeout-multiplier` does: under
    /// TCG, mmap.sh needs more than its 600 s.
    public var timeoutMultiplier: Int

    public init(suites: [String] = allSuites, tests: [String]? = nil, modules: [String] = [], loadFirst: [String] = [],
                ndctlVersion: String? = nil, topologyArgument: String, timeoutMultiplier: Int = 1) {
        self.suites = suites
        self.tests = tests
        self.moduleArguments = modules
        self.modules = modules.map(ModuleSpec.init(parsing:))
        self.loadFirst = loadFirst
        self.ndctlVersion = ndctlVersion
        self.topologyArgument = topologyArgument
        self.timeoutMultiplier = max(1, timeoutMultiplier)
    }

    public struct Plan: ScenarioSetup {
        public let build: NdctlTestBuild
        public let selected: [SuiteTest]
        /// Test module sets by name: built, or why not.
        public let testModules: [String: String]
        /// Suites whose test modules could not be built, and why: their tests are not run.
        public let unavailable: [String: String]
        public let modules: [String]
        public let parameters: [String: [String]]
        public let kernelReference: String
        public let payload: ImagePayload

        public var imageModules: [String] { modules }
        /// The recipe's `ndctl-suite` group: the file systems the tests mount.
        public var imageFeatures: Set<String> { ["ndctl-suite"] }
        public var imagePayload: [ImagePayload] { [payload] }
        public var facts: [Fact] {
            [Fact("ndctl", build.version), Fact("tests", "\(selected.count)")]
                + testModules.sorted { $0.key < $1.key }.map { Fact($0.key, $0.value) }
        }
    }

    /// What is wrong with suites, load-first modules and a timeout multiplier as a user gave
    /// them (`suites`, `load_first` and `timeout_multiplier` of a matrix file, the command's
    /// options), or nil: the one rule of both.
    public static func problem(suites: [String]?, loadFirst: [String], timeoutMultiplier: Int = 1) -> String? {
        if !(1...100).contains(timeoutMultiplier) {
            return "timeout multiplier \(timeoutMultiplier) is out of range; give a whole number from 1 to 100 (2 suits TCG)"
        }
        if let suites {
            let unknown = suites.filter { !allSuites.contains($0) }
            if suites.isEmpty { return "suites names none; ndctl's suites are ndctl, dax and cxl" }
            if !unknown.isEmpty { return "suites names '\(unknown.joined(separator: ", "))'; ndctl's suites are ndctl, dax and cxl" }
        }
        if let bad = loadFirst.first(where: { !ModuleIndex.isModuleName($0) }) {
            return "load-first '\(bad)' is not a module name; name modules (fsdev_dax) and give their files as modules"
        }
        return nil
    }

    /// Which test module set a suite's tests need.
    static func testModules(forSuite suite: String) -> KernelTestModules? {
        switch suite {
        case "ndctl", "dax": .nfit
        case "cxl": .cxl
        default: nil
        }
    }

    public func setup(for kernel: KernelUnderTest, cache: CacheDirectory, progress: @escaping @Sendable (String) -> Void) async throws -> Plan {
        let build = try await NdctlTestBuilder(cache: cache).build(version: ndctlVersion, progress: progress)
        let selected = try Self.select(build.tests, suites: suites, names: tests)
        var modules: [String] = []
        var states: [String: String] = [:]
        var unavailable: [String: String] = [:]
        let sets = Set(selected.compactMap { Self.testModules(forSuite: $0.suite) })
        for set in KernelTestModules.allCases where sets.contains(set) {
            do {
                let built = try await TestModuleBuilder(cache: cache).build(set, for: kernel.kernel, config: kernel.config, progress: progress)
                modules += built
                states[set.rawValue] = "built for \(kernel.kernel.release) (\(built.map { ModuleIndex.name(ofPath: $0) }.joined(separator: ", ")))"
            } catch {
                states[set.rawValue] = "not built: \(error)"
                for suite in Self.allSuites where Self.testModules(forSuite: suite) == set { unavailable[suite] = "\(error)" }
            }
        }
        var parameters: [String: [String]] = [:]
        let builder = ModuleBuilder(cache: cache)
        for spec in self.modules {
            let resolved = try await builder.resolve([spec.path], for: kernel.kernel, progress: progress)
            // A user's module replaces a test build of the same name: it is what is under test.
            let names = Set(resolved.files.map { ModuleIndex.name(ofPath: $0) })
            modules.removeAll { names.contains(ModuleIndex.name(ofPath: $0)) }
            modules += resolved.files + resolved.inTree
            for name in names.union(resolved.inTree) { parameters[name] = spec.parameters }
        }
        for name in loadFirst where !modules.contains(where: { ModuleIndex.name(ofPath: $0) == ModuleIndex.canonical(name) || $0 == name }) {
            modules.append(name)   // an in-tree module (Debian 7.3's own fsdev_dax)
        }
        return Plan(build: build, selected: selected, testModules: states, unavailable: unavailable, modules: modules,
                    parameters: parameters, kernelReference: kernel.pinned.exactReference, payload: try build.payload())
    }

    /// The tests of `suites`, or exactly those named, in meson's order.
    public static func select(_ all: [SuiteTest], suites: [String], names: [String]?) throws -> [SuiteTest] {
        if let names {
            let known = Set(all.map(\.name))
            let unknown = names.filter { !known.contains($0) }
            guard unknown.isEmpty else {
                throw SuiteSelectionError(message: "no test named \(unknown.joined(separator: ", ")) in ndctl's suite; its tests are: "
                    + all.map(\.name).joined(separator: ", "))
            }
            return all.filter { names.contains($0.name) }
        }
        let unknown = suites.filter { suite in !all.contains { $0.suite == suite } }
        guard unknown.isEmpty else {
            throw SuiteSelectionError(message: "no suite named \(unknown.joined(separator: ", ")); ndctl's suites are: "
                + Array(Set(all.map(\.suite))).sorted().joined(separator: ", "))
        }
        return all.filter { suites.contains($0.suite) }
    }

    public func run(_ plan: Plan, on guest: some GuestAgent, machine: GuestMachine,
                    progress: @escaping @Sendable (String) -> Void = { _ in }) async -> ScenarioOutcome {
        let operations = GuestOperations(guest: guest)
        let clock = ContinuousClock()
        let start = clock.now
        var results: [SuiteReport.TestResult] = []
        var failure: OutcomeError?
        var loaded: [String] = []
        var running: SuiteTest?
        do {
            try await labelPlatformNVDIMMs(machine: machine, operations: operations, progress: progress)
            loaded = try await loadFirstModules(plan: plan, operations: operations, progress: progress)
            for (index, test) in plan.selected.enumerated() {
                if let reason = plan.unavailable[test.suite] {
                    results.append(.init(name: test.name, suite: test.suite, verdict: .notApplicable, status: nil, seconds: 0,
                                         message: "not run: " + (reason.split(separator: "\n").first.map(String.init) ?? reason), output: [], kernelLog: [],
                                         repro: repro(plan: plan, test: test.name)))
                    continue
                }
                let failed = results.filter { $0.verdict.isFailure }.count
                progress("test \(index + 1)/\(plan.selected.count): \(test.name)" + (failed > 0 ? " (\(failed) failed so far)" : ""))
                running = test
                let result = try await runTest(test, plan: plan, operations: operations)
                running = nil
                results.append(result)
            }
        } catch let caught {
            failure = OutcomeError(caught)
            // The test under way when the guest went away is kept, as an error with the reason.
            if let test = running {
                results.append(.init(name: test.name, suite: test.suite, verdict: .error, status: nil, seconds: 0,
                                     message: "not finished: \(caught)", output: [], kernelLog: [], repro: repro(plan: plan, test: test.name)))
            }
        }
        let report = SuiteReport(ndctlVersion: plan.build.version, testModules: plan.testModules, loadedFirst: loaded,
                                 results: results)
        let notApplicable = plan.selected.isEmpty ? ["no test selected"] : []
        return ScenarioOutcome(scenario: name, cases: report.cases, rounds: 1, subjects: results.count, notApplicable: notApplicable,
                               failure: failure, guestSeconds: (clock.now - start).seconds, facts: plan.facts, detail: ScenarioDetail(report))
    }

    /// What each test's environment gains for this guest. It has no udev: libdevmapper, which
    /// otherwise waits for udev to make /dev/mapper/<name> (dm.sh: "The file
    /// /dev/mapper/test_pmem does not exist"), makes the nodes itself.
    static let guestEnvironment = ["DM_DISABLE_UDEV": "1"]

    /// Writes empty namespace labels on the machine's own NVDIMMs (the ACPI.NFIT bus), as the
    /// labelled DIMMs ndctl's tests expect: a new QEMU NVDIMM's label area is blank, so its
    /// region is label-less and dm.sh's `create-namespace -s 1G` is refused ("Legacy /
    /// label-less namespaces do not support sub-dividing a region").
    func labelPlatformNVDIMMs(machine: GuestMachine, operations: GuestOperations<some GuestAgent>,
                              progress: @escaping @Sendable (String) -> Void) async throws {
        guard machine.topology.nvdimms.contains(where: \.isLabelled) else { return }
        progress("writing namespace labels on the NVDIMMs of ACPI.NFIT")
        for step in [["disable-region", "-b", "ACPI.NFIT", "all"], ["init-labels", "-f", "-b", "ACPI.NFIT", "all"],
                     ["enable-region", "-b", "ACPI.NFIT", "all"]] {
            let call = AgentCalls.RunTest(command: [NdctlTestBuild.guestNdctl] + step, environment: [:], workingDirectory: nil,
                                          timeoutSeconds: 120, tailBytes: 4096)
            let run = try await operations.guest.send(call, timeout: .seconds(180))
            guard run.status == 0 else {
                throw StepFailure("ndctl \(step.joined(separator: " ")) failed in the guest (exit \(run.status)): "
                    + run.output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(400)
                    + "; the suite needs labelled NVDIMMs (label_size > 0 in the topology) or none")
            }
        }
    }

    /// Unloads the dax drivers, loads the load-first modules in order, then the dax drivers
    /// again: the load-first ones register first.
    func loadFirstModules(plan: Plan, operations: GuestOperations<some GuestAgent>, progress: @escaping @Sendable (String) -> Void) async throws -> [String] {
        guard !loadFirst.isEmpty else { return [] }
        progress("loading \(loadFirst.joined(separator: ", ")) first")
        let present = try await operations.loadedModules()
        let names = loadFirst.map { ModuleIndex.canonical(ModuleIndex.name(ofPath: $0)) }
        for driver in (Self.daxDrivers + names).reversed() where present.contains(driver) { try await operations.unload(driver) }
        for name in names { try await operations.load(name, parameters: plan.parameters[name] ?? []) }
        for driver in Self.daxDrivers where !names.contains(driver) { try await operations.load(driver, parameters: plan.parameters[driver] ?? []) }
        return names
    }

    func runTest(_ test: SuiteTest, plan: Plan, operations: GuestOperations<some GuestAgent>) async throws -> SuiteReport.TestResult {
        let mark = try await operations.mark()
        let timeout = min(test.timeoutSeconds * timeoutMultiplier, AgentCalls.RunTest.timeoutRange.upperBound)
        let call = AgentCalls.RunTest(command: test.command, environment: test.environment.merging(Self.guestEnvironment) { mine, _ in mine },
                                      workingDirectory: test.workingDirectory, timeoutSeconds: timeout, tailBytes: 65536)
        let run = try await operations.guest.send(call, timeout: .seconds(timeout + 60))
        let kernel = (try? await operations.dmesg(since: mark)) ?? []
        let output = run.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let trimmed = Array(output.last == "" ? output.dropLast() : output)
        let verdict = SuiteReport.verdict(status: run.status)
        return SuiteReport.TestResult(
            name: test.name, suite: test.suite, verdict: verdict, status: run.status, seconds: run.seconds,
            message: SuiteReport.message(status: run.status, timedOut: run.timedOut, timeout: timeout, output: trimmed),
            output: verdict == .pass ? [] : verdict == .notApplicable ? Array(trimmed.suffix(5)) : SuiteReport.evidence(trimmed), kernelLog: verdict == .pass ? [] : Array(kernel.suffix(20)), repro: repro(plan: plan, test: test.name)
        )
    }

    /// The command that runs one test of this suite alone, on the same kernel and modules.
    func repro(plan: Plan, test: String) -> String {
        Self.command(kernel: plan.kernelReference, topology: topologyArgument, modules: moduleArguments, loadFirst: loadFirst,
                     ndctlVersion: ndctlVersion, tests: [test], suites: nil, timeoutMultiplier: timeoutMultiplier)
    }

    /// `cxllab suite ndctl` with these settings, quoted for a shell: a test's repro, a matrix
    /// cell's command. Tests, when named, say more than suites.
    public static func command(kernel: String, topology: String, modules: [String], loadFirst: [String], ndctlVersion: String?,
                               tests: [String]?, suites: [String]?, timeoutMultiplier: Int = 1) -> String {
        var words = ["cxllab", "suite", "ndctl", "--kernel", kernel, "--topology", topology]
        for module in modules { words += ["--module", module] }
        if !loadFirst.isEmpty { words += ["--load-first", loadFirst.joined(separator: ",")] }
        if let ndctlVersion { words += ["--ndctl-version", ndctlVersion] }
        if let tests { words += ["--tests", tests.joined(separator: ",")] } else if let suites { words += ["--suites", suites.joined(separator: ",")] }
        if timeoutMultiplier > 1 { words += ["--timeout-multiplier", String(timeoutMultiplier)] }
        return words.map(shellQuoted).joined(separator: " ")
    }
}

public struct SuiteSelectionError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
