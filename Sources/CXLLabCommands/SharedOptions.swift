import ArgumentParser

// The options several commands take, each declared once with one help text. What differs
// between commands (a default, what a module is for) is the group's type parameter or the
// group itself, so `cxllab run --help` and `cxllab up --help` describe the same option in the
// same words.

/// The forms a kernel is named in, for `--kernel` and for `cxllab kernel fetch|show|rm KERNEL`.
enum KernelForms {
    static let help = """
        The kernel: debian:SUITE, debian:RELEASE, build:TREE, make:TREE or files:BZIMAGE[,modules=DIR][,config=FILE] \
        (`cxllab kernel --help` says what each is).
        """
    /// The same forms spelled out, for the `kernel` command's discussion.
    static let explained = """
        A kernel is named in one of these forms:
          debian:SUITE     the newest of bookworm, bookworm-backports, trixie-backports
          debian:RELEASE   a Debian kernel by its uname -r (debian:6.12.95+deb12-amd64)
          build:TREE       a kernel build tree as built (bzImage, .config, the .ko files)
          make:TREE        a kernel tree cxllab builds first, then as build:TREE
          files:BZIMAGE[,modules=DIR][,config=FILE]   anything else
        """
}

/// What a command's `--kernel` is when not given.
protocol KernelDefault {
    static var value: String { get }
}

/// The kernel every command boots or builds for when told nothing: the newest of Debian 12's
/// backports.
enum BookwormBackports: KernelDefault {
    static var value: String { "debian:bookworm-backports" }
}

/// `--kernel KERNEL`.
struct KernelOption<Default: KernelDefault>: ParsableArguments {
    @Option(help: ArgumentHelp(KernelForms.help)) var kernel = Default.value
}

/// `KERNEL` as the first argument of `cxllab kernel fetch|show|rm`.
struct KernelArgument: ParsableArguments {
    @Argument(help: ArgumentHelp(KernelForms.help)) var kernel: String
}

/// What a command's `--recipe` is when not given.
protocol RecipeDefault {
    static var value: String { get }
}

/// images/default.yaml: the guest image of labs and driver scenarios.
enum DefaultRecipe: RecipeDefault {
    static var value: String { "default" }
}

/// images/ndctl-suite.yaml: the default image with what ndctl's tests need.
enum NdctlSuiteRecipe: RecipeDefault {
    static var value: String { "ndctl-suite" }
}

/// `--recipe RECIPE`.
struct RecipeOption<Default: RecipeDefault>: ParsableArguments {
    @Option(help: "The guest image recipe: a name under images/ or a YAML path.") var recipe = Default.value
}

/// The two things a module on the command line can be for, each with its own flag.
enum ModuleHelp {
    /// run, race and suite: a module stands in for the driver (or test module) of its name.
    static let replaces = """
        A module in place of the one of its name: a .ko or a source folder, with parameters \
        after ':' (PATH[:param=value,...], e.g. PATH:automatch=1). Repeatable.
        """
    /// up and image build: a module added to the image, loaded by no scenario.
    static let extra = """
        A module added to the image: an in-tree name (loaded at boot), a .ko built for the \
        kernel or a source folder (put in place of the kernel's module of its name). Nothing \
        loads it in an order: that is run's --module. Repeatable; --module is an old spelling.
        """
}

/// `--module PATH[:param=value,...]`, repeatable: run, race, suite.
struct ModuleOptions: ParsableArguments {
    @Option(help: ArgumentHelp(ModuleHelp.replaces)) var module: [String] = []
}

/// `--extra-module NAME|PATH`, repeatable: up, image build. `--module` was its name there and
/// stays, hidden, so scripts keep working.
struct ExtraModuleOptions: ParsableArguments {
    @Option(help: ArgumentHelp(ModuleHelp.extra, valueName: "module")) var extraModule: [String] = []
    @Option(name: .customLong("module"), help: .hidden) var oldSpelling: [String] = []

    /// Every module given, under either name.
    var modules: [String] { extraModule + oldSpelling }
}

/// `--json`: the result as data on standard output.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print the result as JSON on standard output (progress stays on standard error).") var json = false
}

/// `--junit FILE`.
struct JUnitOption: ParsableArguments {
    @Option(help: ArgumentHelp("Write JUnit XML here (one test case per order, round or test).", valueName: "FILE"))
    var junit: String?
}
