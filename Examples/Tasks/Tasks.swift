public import Foundation
public import Phylactery

/// An example extension: tasks that belong to a core ``Workspace`` (a foreign key into a table
/// the core owns, so the federation applies this extension after the core).
public struct Tasks: PhylacteryExtension {
    public let slug = "tasks"
    public let version = "1.0.0"

    public init() {}

    public func initialize(_ context: ExtensionContext) throws {
        context.register(TaskItem.self)
        context.handle(CloseTask.self, CloseTask.handle)
    }
}

/// Where a task stands; stored as text with a CHECK listing the cases.
public enum TaskStatus: String, PersistentEnum, Hashable {
    case open, doing, done
}

/// One task of a workspace.
@Model(table: "tasks_items", unique: [UniqueConstraint(columns: ["workspace_id", "title"])])
public struct TaskItem: Hashable {
    /// The workspace; deleting it deletes its tasks.
    @References(Workspace.self, onDelete: .cascade) @Index public var workspaceID: UUID
    public var title: String
    public var status: TaskStatus
    @Column(default: "0") public var priority: Int32
    public var dueAt: Date?
}
