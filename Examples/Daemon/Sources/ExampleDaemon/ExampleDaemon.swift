import NotebookExtension
import PhylacteryCommands
import TasksExtension

/// A daemon's operator tool in a few lines: every Phylactery command, under the daemon's own name,
/// for the daemon's own extensions.
@main
enum ExampleDaemon {
    static func main() async {
        await PhylacteryCommands.main(
            commandName: "example-daemon",
            abstract: "The example daemon's operator tool: its database, queue, traces and memory.",
            extensions: [Notebook(), Tasks()])
    }
}
