import ArgumentParser

// The options several commands take, each declared once with one help text. What differs
// between commands (a default, whether it must be given, what a module is for) is the
// group's type parameter, so `cxllab run --help` and `cxllab up --help` describe the same
// option in the same words.

/// The forms a kernel is named in, for `--kernel` and for `cxllab kernel fetch|show|rm KERNEL`.
enum KernelForms {
    static let help = "The kernel: debian:SUITE|debian:RELEASE|build:TREE (as built)|make:TREE (built first)|files:BZIMAGE[,modules=DIR][,config=FILE]."
}

/// What a command's `--kernel` is when not given, or nil when it must be given.
protocol KernelDefault {
    static var value: String? { get }
}

/// The kernel most commands boot when told nothing: the newest of Debian 12's backports.
enum BookwormBackports: KernelDefault {
    static var value: String? { "debian:bookworm-backports" }
}

/// `cxllab image build` builds for the kernel it is told, never a default.
enum KernelRequired: KernelDefault {
    static var value: String? { nil }
}

/// `--kernel KERNEL`.
struct KernelOption<Default: KernelDefault>: ParsableArguments {
    @Option var kernel: String

    // A property wrapper's initial value decides whether argument-parser treats the option as
    // optional (with a default shown in the help) or required; it is chosen here, per command.
    init() {
        if let kernel = Default.value {
            _kernel = Option(wrappedValue: kernel, help: ArgumentHelp(KernelForms.help))
        } else {
            _kernel = Option(help: ArgumentHelp(KernelForms.help))
        }
    }
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

/// What `--module` does in a command: the same argument, two meanings.
protocol ModuleUse {
    static var help: String { get }
}

/// run, race and suite: a module stands in for the driver (or test module) of its name.
enum ReplacesModuleOfItsName: ModuleUse {
    static var help: String {
        "A module in place of the one of its name: a .ko or a source folder, with parameters after ':' (PATH[:param=value,...], e.g. PATH:automatch=1). Repeatable."
    }
}

/// up and image build: a module added to the image (ModuleBuilder.resolve's forms).
enum AddsModule: ModuleUse {
    static var help: String {
        "An extra module: an in-tree name, a .ko built for the kernel, or a module source folder. Repeatable."
    }
}

/// `--module PATH`, repeatable.
struct ModuleOptions<Use: ModuleUse>: ParsableArguments {
    @Option(help: ArgumentHelp(Use.help)) var module: [String] = []
}
