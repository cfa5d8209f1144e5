/// Something a command's sender wants done on the connection's event loop when the command is answered.
///
/// A task that sends a command can name a follow-up: the connection calls ``replyDelivered()``
/// exactly once, just before it resumes the task, whatever the answer (a reply, an error, the
/// task's cancellation, a timeout, the connection closing) and on whatever path (also when the
/// command could not be sent at all). The cache's read batcher uses it to free the slot of a lone
/// read at the moment its reply arrives, on the event loop, so a read queued behind it leaves
/// without waiting for the first caller's task to run, and the caller, once resumed, never finds
/// its own slot still taken.
package protocol ReplyFollowUp: AnyObject, Sendable {
    /// Called once per command; must not block (it usually runs on an event loop).
    func replyDelivered()
}
