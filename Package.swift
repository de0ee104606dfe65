// swift-tools-version: 6.1
import PackageDescription

// C libraries come from Debian (libvirt-dev, libxml2-dev) through pkg-config; the
// Swift packages are the ones this project's machines carry (see README).
let package = Package(
    name: "cxllab",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cxllab", targets: ["cxllab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
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
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "Libvirt", dependencies: ["CLibvirt"]),
        .target(name: "XML", dependencies: ["CLibXML2"]),
        .target(name: "HostSupport", dependencies: ["CLibCrypto"]),
        .target(name: "GuestImage", dependencies: ["HostSupport", .product(name: "Yams", package: "Yams")]),
        .target(name: "HostCheck", dependencies: ["HostSupport", "GuestImage", "Libvirt", "XML"]),
        .target(
            name: "CXLLabCommands",
            dependencies: [
                "HostSupport", "GuestImage", "HostCheck", "Libvirt",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "cxllab", dependencies: ["CXLLabCommands"]),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt", "HostSupport"]),
        .testTarget(name: "XMLTests", dependencies: ["XML"]),
        .testTarget(name: "HostSupportTests", dependencies: ["HostSupport"]),
        .testTarget(name: "GuestImageTests", dependencies: ["GuestImage", "HostSupport", "Libvirt"]),
        .testTarget(name: "HostCheckTests", dependencies: ["HostCheck", "CXLLabCommands", "HostSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
