import CXLLabCommands

@main
enum Entry {
    static func main() async {
        await CXLLab.runAndExit()
    }
}
