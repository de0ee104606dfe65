import ArgumentParser
import Foundation
import Kernels
import HostCheck
import HostSupport
import LabRuntime
import Topology

extension CXLLab {
    struct Topology: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check, show and render machine topologies (topologies/*.yaml).",
            discussion: CommandHelp.discussion(
                "The file format is described in docs/TOPOLOGIES.md and at the top of each file in topologies/.",
                exit: ExitStatus(success: "every file is valid", failure: "a file is not")),
            subcommands: [Validate.self, Show.self, XML.self]
        )
    }
}

/// Options of every topology command: which QEMU to check against.
struct EmulatorOptions: ParsableArguments {
    @Flag(name: .customLong("assume-qemu10"), help: "Check against QEMU 10.0.2's features instead of asking the installed QEMU.")
    var assumeQEMU10 = false

    /// The installed QEMU's capabilities; QEMU 10's, with a warning, when QEMU cannot be asked.
    func capabilities(context: LabContext) async -> EmulatorCapabilities {
        if assumeQEMU10 { return .qemu10 }
        do {
            return try await QEMUProbe.probe(cache: context.cache, memo: context.qemuProbes).emulatorCapabilities
        } catch {
            Terminal.standardError.line("warning: could not ask QEMU what it offers (\(error)); checking against QEMU 10.0.2's features")
            return .qemu10
        }
    }
}

/// The Topology module's machine type; inside `CXLLab.Topology`, `Topology` names the command.
typealias MachineTopology = Topology

enum TopologyFiles {
    /// Reads and validates one file; prints its diagnostics to standard error on failure.
    static func load(_ path: String, capabilities: EmulatorCapabilities) throws -> MachineTopology {
        let text = try InputFile.text(path, role: "topology", fix: TopologyFileHint.fix)
        return try MachineTopology.load(yaml: text, file: path, capabilities: capabilities)
    }

    /// Lab files under a directory that plainly does not exist, for looking at the XML.
    static func placeholderLab(_ topology: MachineTopology) -> LabFiles {
        let directory = "/nonexistent/cxllab-lab-placeholder"
        return LabFiles(
            domainName: "cxllab-preview-\(topology.name)", domainType: .qemu,
            kernel: "/nonexistent/KERNEL-PLACEHOLDER", initrd: "/nonexistent/INITRAMFS-PLACEHOLDER",
            kernelArguments: GuestCommandLine.base, labDirectory: directory,
            consoleLog: directory + "/console.log", agentSocket: directory + "/agent.sock",
            metadata: .init(runID: "preview", cellID: "preview", ownerPID: 0, created: Date(timeIntervalSince1970: 0))
        )
    }
}

extension CXLLab.Topology {
    struct Validate: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check topology files and print every problem with its place and fix.",
            discussion: CommandHelp.discussion(examples: ["cxllab topology validate topologies/*.yaml"],
                                               exit: ExitStatus(success: "every file is valid", failure: "a file is not"))
        )
        @OptionGroup var emulator: EmulatorOptions
        @Argument(help: "Topology files.") var files: [String]
        @OptionGroup var output: JSONOption

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one topology file, e.g. topologies/nvdimm-single.yaml") }
        }

        /// One file's verdict, as `--json` prints it.
        struct Checked: Encodable {
            let file: String
            let valid: Bool
            /// The topology's name, when it is valid.
            let name: String?
            let diagnostics: [TopologyDiagnostic]
            /// Why it could not be read at all, when it could not.
            let error: String?
        }

        /// Every file checked, valid or not, in the order given.
        static func check(_ files: [String], capabilities: EmulatorCapabilities) -> [Checked] {
            files.map { file in
                do {
                    let topology = try TopologyFiles.load(file, capabilities: capabilities)
                    return Checked(file: file, valid: true, name: topology.name, diagnostics: [], error: nil)
                } catch let error as TopologyError {
                    return Checked(file: file, valid: false, name: nil, diagnostics: error.diagnostics, error: nil)
                } catch {
                    return Checked(file: file, valid: false, name: nil, diagnostics: [], error: FailedCommand.words(for: error))
                }
            }
        }

        func run(in context: LabContext) async throws {
            let capabilities = await emulator.capabilities(context: context)
            let checked = Self.check(files, capabilities: capabilities)
            let failed = checked.filter { !$0.valid }.count
            if output.json {
                print(try JSONOutput.encode(checked))
            } else {
                for file in checked {
                    if let name = file.name {
                        print("\(file.file): ok (\(name))")
                    } else if let error = file.error {
                        print("\(file.file): error: \(error)")
                    } else {
                        print(TopologyError(file.diagnostics).description)
                    }
                }
                if failed > 0 {
                    print("\(failed) of \(files.count) file\(files.count == 1 ? "" : "s") invalid (checked against QEMU \(capabilities.version)).")
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }

    struct Show: ContextCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the machine a topology file describes, as a tree.",
            discussion: CommandHelp.discussion("With --json: the validated machine as data, sizes in bytes.",
                                               exit: ExitStatus(success: "the file is valid and shown", failure: "it is not valid"))
        )
        @OptionGroup var emulator: EmulatorOptions
        @Argument(help: "A topology file.") var file: String
        @OptionGroup var output: JSONOption

        func run(in context: LabContext) async throws {
            let topology = try await loadOrExit(file, emulator, context: context)
            print(output.json ? try JSONOutput.encode(topology) : topology.outline())
        }
    }

    struct XML: ContextCommand {
        static let configuration = CommandConfiguration(
            commandName: "xml",
            abstract: "Print the libvirt domain XML of a topology file.",
            discussion: CommandHelp.discussion(
                "Lab paths are placeholders under /nonexistent/cxllab-lab-placeholder; a real lab uses its own directory.",
                exit: ExitStatus(success: "the file is valid and its XML printed", failure: "it is not valid"))
        )
        @OptionGroup var emulator: EmulatorOptions
        @Argument(help: "A topology file.") var file: String

        func run(in context: LabContext) async throws {
            let topology = try await loadOrExit(file, emulator, context: context)
            print(try topology.render(TopologyFiles.placeholderLab(topology)).xml, terminator: "")
        }
    }
}

/// Loads a file, or prints its diagnostics and exits 1.
private func loadOrExit(_ file: String, _ emulator: EmulatorOptions, context: LabContext) async throws -> MachineTopology {
    let capabilities = await emulator.capabilities(context: context)
    do {
        return try TopologyFiles.load(file, capabilities: capabilities)
    } catch let error as TopologyError {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(1)
    }
}
