import Foundation
@testable import GuestImage
import HostSupport
import Libvirt
@testable import LabRuntime
@testable import Matrix
@testable import Scenarios
import Testing
import TestSupport
@testable import Kernels
@testable import TestBuilds

/// The suite's logic without a guest: meson's test list as recorded from ndctl 81, test
/// selection, verdicts and evidence from a test's output, the test modules' config rules,
/// and the matrix's ndctl-suite cells.
@Suite struct NdctlSuiteLogicTests {
    static let recorded = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Transcripts/ndctl-81-meson-tests.json").path

    func tests() throws -> [SuiteTest] {
        let data = try #require(FileManager.default.contents(atPath: Self.recorded))
        return try SuiteTest.parseIntrospection(data, hostRoot: "/tmp/s16/ndctl-81", guestRoot: "/usr/lib/cxllab/ndctl/src",
                                                 buildFolder: "/tmp/s16/ndctl-81/build")
    }

    @Test func mesonsListGivesEveryTestWithGuestPaths() throws {
        let all = try tests()
        #expect(all.count == 48)
        #expect(Set(all.map(\.suite)) == ["ndctl", "dax", "cxl"])
        let deviceDax = try #require(all.first { $0.name == "device-dax" })
        #expect(deviceDax.suite == "dax" && deviceDax.timeoutSeconds == 600)
        #expect(deviceDax.command == ["/usr/lib/cxllab/ndctl/src/build/test/device-dax"])
        #expect(deviceDax.environment["NDCTL"] == "/usr/lib/cxllab/ndctl/src/build/ndctl/ndctl")
        #expect(deviceDax.environment["DATA_PATH"] == "/usr/lib/cxllab/ndctl/src/test")
        #expect(all.allSatisfy { $0.workingDirectory == nil && $0.environment["CXL"] == "/usr/lib/cxllab/ndctl/src/build/cxl/cxl" })
        #expect(all.allSatisfy { test in !test.command.joined().contains("/tmp/s16") && !test.environment.values.joined().contains("/tmp/s16") })
        // Scripts run from the source folder, as meson runs them.
        #expect(all.first { $0.name == "daxctl-create.sh" }?.command == ["/usr/lib/cxllab/ndctl/src/test/daxctl-create.sh"])
        // cxl-*.sh, which meson runs as `/bin/bash script` (not executable in the tarball), run as
        // the script: the agent runs only programs under /usr/lib/cxllab.
        #expect(all.first { $0.name == "cxl-topology.sh" }?.command == ["/usr/lib/cxllab/ndctl/src/test/cxl-topology.sh"])
        #expect(all.allSatisfy { $0.command[0].hasPrefix("/usr/lib/cxllab/") })
    }

    @Test func selectionBySuiteOrNameKeepsMesonsOrderAndNamesTheUnknown() throws {
        let all = try tests()
        let dax = try NdctlSuiteScenario.select(all, suites: ["dax"], names: nil)
        #expect(dax.count == 13 && dax.allSatisfy { $0.suite == "dax" })
        #expect(dax.map(\.name).contains("device-dax") && dax.map(\.name).contains("daxctl-devices.sh"))
        let named = try NdctlSuiteScenario.select(all, suites: ["ndctl"], names: ["mmap.sh", "device-dax"])
        #expect(named.map(\.name) == ["device-dax", "mmap.sh"])
        #expect(throws: SuiteSelectionError.self) { try NdctlSuiteScenario.select(all, suites: [], names: ["device_dax"]) }
        do {
            _ = try NdctlSuiteScenario.select(all, suites: ["daxx"], names: nil)
            Issue.record("an unknown suite was accepted")
        } catch {
            #expect("\(error)".contains("no suite named daxx") && "\(error)".contains("cxl, dax, ndctl"))
        }
    }

    @Test func exitStatusesAreMesonsAndTheMessageIsTheTestsOwnWords() {
        #expect(SuiteReport.verdict(status: 0) == .pass)
        #expect(SuiteReport.verdict(status: 77) == .notApplicable)
        #expect(SuiteReport.verdict(status: 1) == .fail)
        #expect(SuiteReport.verdict(status: 124) == .fail)
        #expect(SuiteReport.verdict(status: 127) == .error)
        let skipped = SuiteReport.message(status: 77, timedOut: false, timeout: 600, output: ["test/dm.sh: line 3", "missing fio, skipping...", ""])
        #expect(skipped == "skipped: missing fio, skipping...")
        // Skips as the dax suite gave them: the test's words, not the trace, log or count after them.
        let deviceDax = ["libndctl: ndctl_namespace_enable: namespace0.0: enabled via pfn0.1", "__test_device_dax: failed to find suitable namespace",
                         "libdaxctl: daxctl_unref: context 0x564e71c907a0 released", "libndctl: ndctl_unref: context 0x564e71c90a60 released", ""]
        #expect(SuiteReport.message(status: 77, timedOut: false, timeout: 600, output: deviceDax) == "skipped: __test_device_dax: failed to find suitable namespace")
        let fio = ["__ndctl_test_skip: explicit skip emit_e820_device:109", "libndctl: ndctl_unref: context 0x557fd67eaa60 released",
                   "attempted: 1 skipped: 1", "test/device-dax-fio.sh: failed at line 21"]
        #expect(SuiteReport.message(status: 77, timedOut: false, timeout: 600, output: fio) == "skipped: __ndctl_test_skip: explicit skip emit_e820_device:109")
        let multiDax = ["+++ basename /usr/lib/cxllab/ndctl/src/test/multi-dax.sh", "test/multi-dax.sh: failed at line 16", "++ '[' -n '' ']'", "++ exit 77"]
        #expect(SuiteReport.message(status: 77, timedOut: false, timeout: 600, output: multiDax) == "skipped: test/multi-dax.sh: failed at line 16")
        let output = ["libndctl: failed to open(O_RDONLY) device-dax instance", "{", "  \"dev\":\"namespace0.0\"", "}"]
        #expect(SuiteReport.message(status: 1, timedOut: false, timeout: 600, output: output) == "exit 1: libndctl: failed to open(O_RDONLY) device-dax instance")
        #expect(SuiteReport.message(status: 124, timedOut: true, timeout: 600, output: output) == "timed out after 600 s")
        // dm.sh as it failed without udev: the complaint before its "failed at line", not its
        // clean-up's, and not the libraries' debug log.
        let dm = ["libndctl: __sysfs_read_attr: failed to read /sys/devices/platform/e820_pmem/ndbus0/region0/dax0.1/size: No such device or address",
                  "+ mkfs.ext4 -b 4096 /dev/mapper/test_pmem", "The file /dev/mapper/test_pmem does not exist and no size was specified.",
                  "++ err 70 cleanup", "test/dm.sh: failed at line 70", "test/dm.sh: failed at line ",
                  "error destroying namespaces: Device or resource busy", "test/sub-section.sh: cleanup() failed to destroy namespace1.1", "++ exit 1"]
        #expect(SuiteReport.message(status: 1, timedOut: false, timeout: 600, output: dm)
                == "exit 1: The file /dev/mapper/test_pmem does not exist and no size was specified.")
        #expect(SuiteReport.message(status: 1, timedOut: false, timeout: 600, output: Array(dm.prefix(1)) + ["test/dm.sh: failed at line 9"])
                == "exit 1: test/dm.sh: failed at line 9")
        // device-dax's C code says nothing of its own when it returns the library's -ENXIO (exit 250).
        #expect(SuiteReport.message(status: 250, timedOut: false, timeout: 600, output: Array(dm.prefix(1)) + ["{", "}"])
                == "exit 250: " + dm[0])
        // The complaint stays in the evidence even when a long JSON dump follows it.
        let long = ["step one", "dax0.0: failed to open(O_RDONLY) device-dax instance"] + (0..<100).map { "  \"line\":\($0)" }
        let evidence = SuiteReport.evidence(long)
        #expect(evidence.first == "dax0.0: failed to open(O_RDONLY) device-dax instance" && evidence.count == 42)
    }

    @Test func testModulesSayWhichConfigTheyNeed() {
        let debian612 = KernelConfig(text: """
            CONFIG_LIBNVDIMM=m\nCONFIG_BLK_DEV_PMEM=m\nCONFIG_ND_BTT=m\nCONFIG_ND_PFN=m\nCONFIG_ACPI_NFIT=m\nCONFIG_DEV_DAX=m
            CONFIG_DEV_DAX_PMEM=m\nCONFIG_CXL_BUS=y\nCONFIG_CXL_ACPI=y\nCONFIG_CXL_PMEM=m\nCONFIG_DEBUG_FS=y
            """)
        #expect(KernelTestModules.nfit.configProblems(debian612).isEmpty)
        let cxl = KernelTestModules.cxl.configProblems(debian612)
        #expect(cxl.contains("CONFIG_CXL_BUS=m (this kernel: y)") && cxl.contains("CONFIG_CXL_REGION_INVALIDATION_TEST (this kernel: not set)"))
        let error = TestModuleError.configUnsuitable(set: .cxl, release: "6.12.95+deb12-amd64", needs: cxl)
        #expect("\(error)".contains("--kernel build:<tree>") && "\(error)".contains("CONFIG_CXL_BUS=y"))
        #expect(KernelTestModules.parse(list: "nfit,cxl_test") == [.nfit, .cxl])
        #expect(KernelTestModules.parse(list: "nfit,ndtest") == nil)
        #expect(TestModuleBuilder.series(of: "6.12.95-1~bpo12+1") == "6.12")
        #expect(TestModuleBuilder.series(of: "7.3.4-1~bpo13+1") == "7.3")
        #expect(NdctlTestBuilder.upstream(of: "81-1") == "81" && NdctlTestBuilder.upstream(of: "1:76.1-1") == "76.1")
        #expect(BuildRoot.codename(of: "trixie-backports") == "trixie")
    }

    @Test func aMatrixSuiteIsOneCellOrOnePerStandInVariant() throws {
        let file = NSTemporaryDirectory() + "suite-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            name: s
            kernels: [debian:bookworm-backports, debian:trixie-backports, debian:bookworm]
            topologies: [topologies/ndctl-suite.yaml]
            scenarios:
              - name: ndctl-suite
                tests: [device-dax]
                stand_in: [0, 1]
                load_first: [fsdev_dax]
              - name: ndctl-suite
                suites: [dax]
              - name: ndctl-suite
                suites: [dax]
                timeout_multiplier: 2
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let matrix = try MatrixFile.load(path: file)
        let cells = MatrixExpansion.cells(matrix, kernels: Fixtures.defaultKernels, standInSource: "images/modules/fsdev_dax")
        let variants = cells.filter { $0.suite?.suiteTests == ["device-dax"] }
        #expect(variants.filter { $0.kernel == "debian:bookworm-backports" }.map(\.variant).sorted() == ["stand-in automatch=0", "stand-in automatch=1"])
        #expect(variants.first { $0.kernel == "debian:trixie-backports" }?.variant == "real fsdev_dax")
        // 6.1 has no fsdev_dax of any kind: nothing to load first.
        #expect(variants.first { $0.kernel == "debian:bookworm" }?.suite?.loadFirst == [])
        #expect(cells.filter { $0.suite?.suites == ["dax"] }.count == 6)
        // The multiplier makes cells of their own and reaches the command; without it, nothing changes.
        let slow = cells.filter { $0.suite?.timeoutMultiplier == 2 }
        #expect(slow.count == 3 && slow.allSatisfy { $0.command.hasSuffix("--suites dax --timeout-multiplier 2") })
        #expect(cells.filter { $0.suite?.suites == ["dax"] && $0.suite?.timeoutMultiplier == nil }.allSatisfy { $0.command.hasSuffix("--suites dax") })
        let command = try #require(variants.first { $0.variant == "stand-in automatch=1" }).command
        #expect(command.hasPrefix("cxllab suite ndctl --kernel debian:6.12.95+deb12-amd64 --topology topologies/ndctl-suite.yaml --module"))
        #expect(command.hasSuffix("--load-first fsdev_dax --tests device-dax"))
        #expect(Set(cells.map(\.id)).count == cells.count)
    }

    @Test func matrixFilesRefuseWhatASuiteDoesNotTake() throws {
        let file = NSTemporaryDirectory() + "suite-bad-\(UUID().uuidString.prefix(6)).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        for (scenario, words) in [("{name: ndctl-suite, orders: all}", "ndctl-suite takes suites"),
                                  ("{name: ndctl-suite, suites: [nvdimm]}", "ndctl's suites are ndctl, dax and cxl"),
                                  ("{name: ndctl-suite, load_first: [x/fsdev_dax.ko]}", "is not a module name"),
                                  ("{name: race, tests: [device-dax]}", "belongs to the ndctl-suite scenario"),
                                  ("{name: ndctl-suite, timeout_multiplier: 0}", "give a whole number from 1 to 100"),
                                  ("{name: race, timeout_multiplier: 2}", "belongs to the ndctl-suite scenario")] {
            try "name: s\nkernels: [debian:bookworm]\ntopologies: [t.yaml]\nscenarios: [\(scenario)]\n".write(toFile: file, atomically: true, encoding: .utf8)
            #expect(throws: MatrixError.self) { try MatrixFile.load(path: file) }
            do { _ = try MatrixFile.load(path: file) } catch { #expect("\(error)".contains(words), "\(error)") }
        }
    }
}

/// ndctl's own device-dax test in real guests on Debian's 6.12, against the kernel's nfit_test
/// build: with the V9 stand-in (automatch=1) loaded before the dax drivers it fails at once, as
/// in the review thread; with automatch=0 it passes (when the guest has the host to itself).
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct NdctlSuiteTests {
    let context = LabContext.forTests()
    static var root: String { LabSessionTests.root }

    func suite(tests: [String], modules: [String] = [], loadFirst: [String] = []) async throws -> (CellOutcome, SuiteReport) {
        let cellID = String(UUID().uuidString.prefix(6)).lowercased()
        let scenario = NdctlSuiteScenario(suites: ["dax"], tests: tests, modules: modules, loadFirst: loadFirst,
                                          topologyArgument: "topologies/ndctl-suite.yaml")
        let outcome = await ScenarioCell(
            kernel: "debian:bookworm-backports", topology: Self.root + "/topologies/ndctl-suite.yaml",
            recipe: try ImageRecipe.load(path: Self.root + "/images/ndctl-suite.yaml"), scenario: scenario, runID: "test", cellID: cellID
        ).run(context: context)
        #expect(try RunningLabs.domains(cell: cellID, run: "test").isEmpty, "the cell's lab is torn down")
        guard let report = outcome.outcome.detail.report(as: SuiteReport.self) else {
            Issue.record("no suite report: \(outcome.rendered())")
            throw CancellationError()
        }
        #expect(report.loadedFirst == loadFirst)
        // Built for the kernel the alias was pinned to, whichever Debian has today.
        let pinned = try #require(outcome.kernel)
        #expect(report.testModules["nfit_test"]?.hasPrefix("built for \(pinned.release)") == true, "\(outcome.rendered())")
        return (outcome, report)
    }

    func deviceDax(automatch: Int) async throws -> (CellOutcome, SuiteReport) {
        try await suite(tests: ["device-dax"], modules: ["\(Self.root)/images/modules/fsdev_dax:automatch=\(automatch)"], loadFirst: ["fsdev_dax"])
    }

    /// device-dax times its verify loop against bare metal (30.7 ms to read its first 8 KiB):
    /// under TCG that holds while no other guest shares the host's cores, and failed in 4 runs
    /// of 9 when one did (2 of 6 with the suite's 1 vCPU). So a test that expects it to pass
    /// takes every guest slot of this process but the one its own lab needs (no other guest of
    /// this process runs beside its own), and waits until the guests of other processes (the
    /// tests that boot through the cxllab command) have stopped: by the owner in their
    /// metadata. Past 10 minutes it goes on regardless, the host shared.
    static func withTheHostToItself<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let slots = TestGuestSlots.shared
        let others = slots.limit - 1
        for _ in 0..<others { await slots.acquire() }
        defer { for _ in 0..<others { slots.release() } }
        let libvirt = try Connection()
        let events = try libvirt.lifecycleEvents()
        let me = getpid()
        @Sendable func noForeignGuest() throws -> Bool {
            // A domain listed may be gone a moment later: gone is not active.
            try libvirt.allDomains().allSatisfy { (try? $0.isActive()) != true || LabLookup.metadata($0)?.pid == me }
        }
        do {
            try await withDeadline(.seconds(1800), what: "other processes' guests stopping") {
                if try noForeignGuest() { return }
                for await event in events where event.kind == .stopped {
                    if try noForeignGuest() { return }
                }
            }
        } catch is DeadlineExceeded {
            // Only this process's own guests are kept away for certain.
        }
        return try await body()
    }

    @Test func deviceDaxFailsWithTheV9StandInLoadedFirst() async throws {
        let (outcome, report) = try await deviceDax(automatch: 1)
        #expect(outcome.outcome.exitStatus == 1, "\(outcome.rendered())")
        let result = try #require(report.results.first)
        #expect(result.name == "device-dax" && result.verdict == .fail && result.seconds < 30)
        #expect(result.repro.contains("--load-first fsdev_dax --tests device-dax"))
        #expect(outcome.rendered().contains("repro: cxllab suite ndctl --kernel \(try #require(outcome.kernel).exactReference)"))
    }
}

/// The suite's scripts, and device-dax with the fixed stand-in loaded first, in one lab that
/// takes the host to itself (`NdctlSuiteTests.withTheHostToItself`). `make test` runs this
/// suite in a phase of its own, after the others: taking the host from inside the main phase
/// held a guest slot idle from the run's start until its lab got through the queue, so the
/// whole main phase ran one guest instead of two.
@Suite(.serialized, .tags(.vm, .network), .needsHost) struct NdctlHostToItselfTests {
    /// What ndctl's scripts take from a distribution, met by the suite's image and lab:
    /// daxdev-errors.sh ends with check_dmesg (journalctl -k) and `modprobe -r nfit_test`,
    /// which takes device_dax along (dax-ext4.sh, between them in meson's order, uses the e820
    /// namespace in fsdax and raw modes only: no dax device), so device-dax's device needs
    /// udev to load its driver and libndctl needs udev's queue to wait for it (with busybox's
    /// mdev, which has no queue, it found the device "disabled"); dax-ext4.sh mounts ext4 (crc32c, a soft dependency) and
    /// reads trace-cmd through /dev/fd; dm.sh makes labelled namespaces on ACPI.NFIT and a
    /// device-mapper node.
    ///
    /// And the fix holds: a stand-in that binds only when bound explicitly, loaded first (as
    /// V9's was when the bug was found), leaves device-dax passing. Both in one lab, which takes
    /// the host to itself once: device-dax failed whenever another guest shared the host's
    /// cores ("verify loop took too long usecs: 45726" against 30720, see withTheHostToItself).
    @Test func scriptsFindWhatADistributionWouldGiveThemWithTheFixedStandInFirst() async throws {
        // In meson's order, whatever the order asked for.
        let (outcome, report) = try await NdctlSuiteTests.withTheHostToItself {
            try await NdctlSuiteTests().suite(tests: ["dm.sh", "device-dax", "dax-ext4.sh", "daxdev-errors.sh"],
                            modules: ["\(NdctlSuiteTests.root)/images/modules/fsdev_dax:automatch=0"], loadFirst: ["fsdev_dax"])
        }
        #expect(report.results.map(\.name) == ["daxdev-errors.sh", "dax-ext4.sh", "device-dax", "dm.sh"])
        #expect(report.results.allSatisfy { $0.verdict == .pass }, "\(outcome.rendered())")
        #expect(outcome.outcome.exitStatus == 0)
    }
}
