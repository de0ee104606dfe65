import ArgumentParser
import Foundation
import LabRuntime
import HostCheck

extension CXLLab {
    struct Doctor: ContextCommand, CacheDirOption {
        static let configuration = CommandConfiguration(
            abstract: "Check that this host can run labs, and say what to do about each problem.",
            discussion: CommandHelp.discussion(exit: ExitStatus(success: "everything needed works", failure: "something blocks labs (listed with its fix)"))
        )

        @OptionGroup var cacheOptions: CacheOptions

        @Option(name: .customLong("connect"), help: "The libvirt URI to check.")
        var uri = "qemu:///system"

        @OptionGroup var output: JSONOption
        var json: Bool { output.json }

        func run(in context: LabContext) async throws {
            let terminal = Terminal.standardError
            let report = await HostCheck.Doctor(cache: context.cache, libvirtURI: uri).run { step in
                if !json { terminal.status(step) }
            }
            terminal.clearStatus()
            if json {
                print(try JSONOutput.encode(report))
            } else {
                print(Self.render(report))
            }
            if !report.isHealthy { throw ExitCode(1) }
        }

        static func render(_ report: DoctorReport) -> String {
            let width = (report.checks.map(\.name.count).max() ?? 0) + 2
            var lines = ["cxllab doctor"]
            for check in report.checks {
                let mark = switch check.status {
                case .ok: "ok  "
                case .warning: "warn"
                case .failed: "FAIL"
                }
                lines.append("  \(mark)  \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))\(check.detail)")
                if let fix = check.fix, check.status != .ok {
                    lines.append("        \(String(repeating: " ", count: width))-> \(fix)")
                }
            }
            let accelerator = report.accelerator.map { $0.accelerator.rawValue.uppercased() } ?? "unknown"
            lines.append("")
            if report.isHealthy {
                lines.append(String(format: "Ready: guests run under %@. Checked in %.1f s.", accelerator, report.seconds))
            } else {
                lines.append("Not ready, \(report.blockers.count) blocker(s): \(report.blockers.map(\.name).joined(separator: ", ")).")
            }
            return lines.joined(separator: "\n")
        }
    }
}
