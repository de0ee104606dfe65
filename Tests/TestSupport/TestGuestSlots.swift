import HostSupport
import Testing

/// The guest slots of this test process: every suite that boots guests (lab sessions, image
/// boots) takes its slot here, so the suites of all test targets together run no more guests
/// at once than cxllab would.
public enum TestGuestSlots {
    /// The trace (CXLLAB_SLOT_TRACE) names the test that takes or gives a slot.
    public static let shared = GuestSlots(label: { Test.current.map { "\($0.id)" } })
}
