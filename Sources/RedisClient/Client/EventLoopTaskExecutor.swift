public import NIOCore

/// A `TaskExecutor` that runs tasks on one NIO event loop.
///
/// A task that prefers this executor (`withTaskExecutorPreference(client.taskExecutor) { ... }`)
/// runs on the same thread as its Redis connection: a command is written without a thread hop and
/// its reply resumes the task without waking another thread. Use it for latency-critical callers.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    /// The event loop the tasks run on.
    public let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `job` on the event loop.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
