public import Foundation
public import Phylactery

/// A background job of the Tasks extension: marks a task done.
///
/// Its handler writes through the job's own transaction, so the status change and the job's
/// completion commit together: however often the job is retried, the task is closed once.
public struct CloseTask: Job {
    public static let kind = "tasks.close"
    /// The task to close.
    public var taskID: UUID

    public init(taskID: UUID) { self.taskID = taskID }

    /// Closes the task, or discards the job when the task no longer exists.
    @Sendable public static func handle(_ job: CloseTask, _ context: JobContext) async throws {
        try await context.transaction { tx in
            guard var task = try await tx.find(TaskItem.self, id: job.taskID) else {
                throw JobControl.discard("task \(job.taskID) no longer exists")
            }
            task.status = .done
            try await tx.update(task)
        }
    }
}
