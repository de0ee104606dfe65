import Foundation
import Testing

// What a suite needs besides the package itself; `make test-pure` (CXLLAB_TESTS=pure) runs
// only the suites that need none of it, in well under a minute.
extension Tag {
    /// Real QEMU guests through the system libvirtd (slow under TCG).
    @Tag public static var vm: Self
    /// Debian's archive (kernels, packages) or a cache filled from it.
    @Tag public static var network: Self
    /// Headless Chromium.
    @Tag public static var browser: Self
}

extension Trait where Self == ConditionTrait {
    /// Off when CXLLAB_TESTS=pure.
    public static var needsHost: Self {
        .enabled(if: ProcessInfo.processInfo.environment["CXLLAB_TESTS"] != "pure", "needs the host's services (CXLLAB_TESTS=pure)")
    }
}
