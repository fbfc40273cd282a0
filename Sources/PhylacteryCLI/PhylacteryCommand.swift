import NotebookExtension
import PhylacteryCommands
import TasksExtension

/// `phylactery`: the operator's commands (from `PhylacteryCommands`) hosting the two example
/// extensions, plus the tour.
@main
enum PhylacteryMain {
    static func main() async {
        await PhylacteryCommands.main(
            commandName: "phylactery", extensions: Extensions.all, additionalCommands: [DemoCommand.self])
    }
}
