import Foundation
@testable import LabRuntime
@testable import Scenarios
@testable import Matrix
@testable import Bench
import Testing

/// libvirt's `qemu-argv` line made runnable without libvirt.
@Suite struct DirectQEMUTests {
    // Shortened from what libvirt 11.3 printed for topologies/cxl-pmem-single.yaml.
    static let line = #"""
        LC_ALL=C PATH=/usr/bin HOME=/var/lib/libvirt/qemu/domain--1-x /usr/bin/qemu-system-x86_64 -name guest=x,debug-threads=on -S -object '{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/domain--1-x/master-key.aes"}' -machine pc-q35-10.0,usb=off,acpi=on -accel tcg -m size=2097152k -chardev socket,id=charmonitor,path=/var/lib/libvirt/qemu/domain--1-x/monitor.sock,server=on,wait=off -mon chardev=charmonitor,id=monitor,mode=control -no-shutdown -append 'console=ttyS0 panic=-1' -device '{"driver":"virtserialport","name":"org.cxllab.agent.0"}' -chardev socket,id=charchannel0,path=/lab/agent.sock,server=on,wait=off -M cxl-fmw.0.targets.0=hb0,cxl-fmw.0.size=4G -msg timestamp=on
        """#

    @Test func dropsWhatOnlyLibvirtUsesAndKeepsTheMachine() throws {
        let command = try DirectQEMU.command(fromLibvirtLine: Self.line)
        #expect(command.executable == "/usr/bin/qemu-system-x86_64")
        let arguments = command.arguments
        #expect(!arguments.contains("-S") && !arguments.contains("-no-shutdown") && !arguments.contains("-mon"))
        #expect(!arguments.contains { $0.contains("masterKey0") || $0.contains("charmonitor") })
        #expect(arguments.last == "-no-reboot")
        #expect(arguments.contains("console=ttyS0 panic=-1"))
        #expect(arguments.contains(#"{"driver":"virtserialport","name":"org.cxllab.agent.0"}"#))
        #expect(arguments.contains("socket,id=charchannel0,path=/lab/agent.sock,server=on,wait=off"))
        #expect(arguments.contains("cxl-fmw.0.targets.0=hb0,cxl-fmw.0.size=4G"))
        #expect(Array(arguments.prefix(2)) == ["-name", "guest=x,debug-threads=on"])
    }

    /// The bench's QEMU runs as an unprivileged user (dropped before QEMU starts) under the
    /// seccomp sandbox; what the line said about either gives way, async teardown stays.
    @Test func runsUnprivilegedUnderTheSandbox() throws {
        let line = Self.line + " -sandbox on,obsolete=allow -run-with async-teardown=on,user=root -runas root -chroot /"
        let user = UnprivilegedUser(name: "libvirt-qemu", uid: 64055, gid: 993)
        let command = DirectQEMU.confined(try DirectQEMU.command(fromLibvirtLine: line), user: user)
        #expect(command.executable == "setpriv")
        let arguments = command.arguments
        #expect(Array(arguments.prefix(7)) == ["--reuid=64055", "--regid=993", "--init-groups", "--inh-caps=-all", "--no-new-privs", "--",
                                               "/usr/bin/qemu-system-x86_64"])
        #expect(arguments.filter { $0 == "-sandbox" }.count == 1)
        #expect(Array(arguments.suffix(2)) == ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"])
        #expect(!arguments.contains("-runas") && !arguments.contains("-chroot") && !arguments.contains { $0.contains("user=") })
        #expect(arguments.firstIndex(of: "-run-with").map { arguments[$0 + 1] } == "async-teardown=on")
        #expect(arguments.contains("-no-reboot") && arguments.contains("console=ttyS0 panic=-1"))
        // The user: the first candidate that exists and is not root.
        #expect(DirectQEMU.unprivilegedUser(candidates: ["no-such-user-cxllab", "root", "nobody"])?.name == "nobody")
        #expect(DirectQEMU.unprivilegedUser(candidates: ["no-such-user-cxllab", "root"]) == nil)
    }

    /// A direct lab's QEMU connects to the host's agent socket; libvirt's QEMU listens on it.
    @Test func turnsOnlyTheAgentChannelRound() throws {
        let arguments = DirectQEMU.connectingAgentChannel(try DirectQEMU.command(fromLibvirtLine: Self.line + " -chardev socket,id=other,path=/lab/x.sock,server=on,wait=off").arguments,
                                                          socketPath: "/lab/agent.sock")
        #expect(arguments.contains("socket,id=charchannel0,path=/lab/agent.sock"))
        #expect(!arguments.contains { $0.contains("agent.sock") && $0.contains("server=") })
        #expect(arguments.contains("socket,id=other,path=/lab/x.sock,server=on,wait=off"))
        #expect(arguments.contains(#"{"driver":"virtserialport","name":"org.cxllab.agent.0"}"#))
    }

    @Test func shellWordsFollowPOSIXQuoting() throws {
        #expect(try DirectQEMU.words(#"a 'b c' "d \"e\"" f\ g '' h"#) == ["a", "b c", #"d "e""#, "f g", "", "h"])
        #expect(throws: DirectQEMU.ParseError.self) { try DirectQEMU.words("a 'b") }
    }
}
