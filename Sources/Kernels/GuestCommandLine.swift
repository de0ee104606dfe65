/// The kernel command line every cxllab guest starts from.
public enum GuestCommandLine {
    /// `no_timer_check`: under TCG on a busy host the kernel's IO-APIC timer check can miss its
    /// window and panic ("IO-APIC + timer doesn't work!", seen in CI with two guests running);
    /// virtual timers need no such check. `panic=-1` turns a panic into a prompt power-off.
    /// `hpet=disable`: once the guest enables QEMU's HPET, QEMU's main loop wakes 500 times a
    /// second for it, and an idle lab's QEMU used 4.2% of a host core (0.7% without; measured
    /// over 30 s). The guest keeps the TSC as its clock and the local APIC for its timers, and
    /// a VM's vCPUs idle with `hlt`, so nothing needs the HPET's broadcast.
    public static let base = ["console=ttyS0", "panic=-1", "no_timer_check", "hpet=disable"]

    /// The base plus quiet logging, for guests whose console is read for faults, not boot noise.
    public static let quiet = base + ["quiet", "loglevel=4"]
}
