import NotebookExtension
import Phylactery
import TasksExtension

/// The extensions this binary hosts: the two examples, so the tour and the tests use real ones.
enum Extensions {
    static let all: [any PhylacteryExtension] = [Notebook(), Tasks()]

    /// The core's models plus every hosted extension's.
    static func federation() throws -> Federation {
        try Federation.standard(extensions: all)
    }
}
