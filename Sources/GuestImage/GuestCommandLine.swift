/// The kernel command line every cxllab guest starts from.
public enum GuestCommandLine {
    /// `no_timer_check`: under TCG on a busy host the kernel's IO-APIC timer check can miss its
    /// window and panic ("IO-APIC + timer doesn't work!", seen in CI with two guests running);
    /// virtual timers need no such check. `panic=-1` turns a panic into a prompt power-off.
    public static let base = ["console=ttyS0", "panic=-1", "no_timer_check"]

    /// The base plus quiet logging, for guests whose console is read for faults, not boot noise.
    public static let quiet = base + ["quiet", "loglevel=4"]
}
