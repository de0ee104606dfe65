// swift-tools-version: 6.1
import PackageDescription

// C libraries come from Debian (libvirt-dev, libxml2-dev) through pkg-config; the
// Swift packages are the ones this project's machines carry (see README).
let package = Package(
    name: "cxllab",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cxllab", targets: ["cxllab"]),
        .executable(name: "cxllab-agent", targets: ["cxllab-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),
        // Optimised in every configuration: content hashes are checked on every cache hit.
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "Libvirt", dependencies: ["CLibvirt", "HostSupport"]),
        .target(name: "XML", dependencies: ["CLibXML2", "HostSupport"]),
        .target(name: "HostSupport", dependencies: ["CSHA256"]),
        .target(name: "AgentProtocol"),
        .target(name: "Agent", dependencies: ["AgentProtocol"]),
        // The guest agent: only the Swift standard library, linked statically, so the image
        // needs nothing of Swift's runtime (glibc comes with the image's library closure).
        .executableTarget(
            name: "cxllab-agent",
            dependencies: ["Agent"],
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        ),
        // The one guard every YAML reader runs before Yams composes: libyaml's events, through
        // Yams' own copy of libyaml (CYaml, in the Yams product's closure); and what topology and
        // matrix files share in reading: places, diagnostics collected at once, the mapping reader.
        .target(name: "YAMLGuard", dependencies: ["HostSupport", .product(name: "Yams", package: "Yams")]),
        // Getting kernels: the Debian archive, references, the kernel store, pins, integrity.
        .target(name: "Kernels", dependencies: ["HostSupport"]),
        // Assembling guest images from a kernel, a recipe and payloads.
        .target(name: "GuestImage", dependencies: ["Kernels", "HostSupport", "YAMLGuard", .product(name: "Yams", package: "Yams")]),
        // Building test artifacts for a kernel: out-of-tree and test modules, ndctl's tests.
        .target(name: "TestBuilds", dependencies: ["Kernels", "GuestImage", "HostSupport"]),
        .target(name: "Topology", dependencies: ["AgentProtocol", "XML", "HostSupport", "YAMLGuard", .product(name: "Yams", package: "Yams")]),
        .target(name: "HostCheck", dependencies: ["HostSupport", "Kernels", "Libvirt", "XML", "Topology"]),
        // Labs at run time: the lab context, backends (libvirt, QEMU directly), sessions, the
        // agent connection, console watching, preparation, lab paths and records, lookup and clean.
        .target(name: "LabRuntime", dependencies: ["AgentProtocol", "GuestImage", "HostCheck", "HostSupport", "Kernels", "Libvirt", "TestBuilds", "Topology", "XML"]),
        // What runs in a lab: the Scenario seam, one cell from inputs to outcome, the scenarios.
        .target(name: "Scenarios", dependencies: ["AgentProtocol", "GuestImage", "HostSupport", "Kernels", "LabRuntime", "Libvirt", "TestBuilds", "Topology"]),
        // Kernels x topologies x scenarios: matrix files, pinning, the runner, the result store
        // (the only SQLite user) and the reports.
        .target(
            name: "Matrix",
            dependencies: ["GuestImage", "HostSupport", "Kernels", "LabRuntime", "Scenarios", "XML", "YAMLGuard",
                           .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Yams", package: "Yams")]
        ),
        // cxllab bench: domain start latency, image builds, the figures.
        .target(name: "Bench", dependencies: ["GuestImage", "HostSupport", "Kernels", "LabRuntime", "Libvirt", "Topology"]),
        .target(
            name: "CXLLabCommands",
            dependencies: [
                "AgentProtocol", "Bench", "GuestImage", "HostCheck", "HostSupport", "Kernels", "LabRuntime", "Libvirt", "Matrix", "Scenarios",
                "TestBuilds", "Topology", "XML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "cxllab", dependencies: ["CXLLabCommands"]),
        // What suites need besides the package (tags, the pure-only switch), for every test target.
        .target(name: "TestSupport", dependencies: ["HostSupport"], path: "Tests/TestSupport"),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt", "HostSupport", "TestSupport"]),
        .testTarget(name: "XMLTests", dependencies: ["XML"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "AgentProtocol", "HostSupport"]),
        .testTarget(name: "LabTests", dependencies: ["TestSupport", "LabRuntime", "Scenarios", "Matrix", "Bench", "GuestImage", "Kernels", "TestBuilds", "Topology",
                                                     "HostSupport", "Libvirt", "AgentProtocol", "HostCheck"],
                    exclude: ["Transcripts"]),
        .testTarget(name: "HostSupportTests", dependencies: ["HostSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "GuestImageTests", dependencies: ["GuestImage", "Kernels", "TestBuilds", "HostSupport", "Libvirt", "TestSupport"]),
        .testTarget(name: "TestBuildsTests", dependencies: ["TestBuilds", "GuestImage", "Kernels", "HostSupport", "TestSupport"]),
        .testTarget(name: "HostCheckTests", dependencies: ["HostCheck", "CXLLabCommands", "HostSupport", "Matrix", "Scenarios", "TestSupport"]),
        .testTarget(name: "YAMLGuardTests", dependencies: ["YAMLGuard", "TestSupport"]),
        .testTarget(
            name: "TopologyTests",
            dependencies: ["Topology", "XML", "HostSupport", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based")],
            exclude: ["Snapshots", "Broken"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
