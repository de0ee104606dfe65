import HostSupport

/// The guest slots of this test process: every suite that boots guests (lab sessions, image
/// boots) takes its slot here, so the suites of all test targets together run no more guests
/// at once than cxllab would.
public enum TestGuestSlots {
    public static let shared = GuestSlots()
}
