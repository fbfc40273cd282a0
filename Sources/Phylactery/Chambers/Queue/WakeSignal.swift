import Synchronization

/// A wake-up that is never lost: a signal sent while nobody waits is kept for the next wait. One
/// task waits at a time (the queue's loops, the embedded server's supervision).
package final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    /// A signal with nothing pending.
    package init() {}

    /// Wakes the waiter, or the next one if none waits now.
    package func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (at once if one is pending), after `timeout`, or on cancellation.
    package func wait(timeout: Duration?) async {
        if self.state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            if let timeout {
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    if !Task.isCancelled { self.signal() }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}

/// A value delivered once: the first ``fulfil(_:)`` wins, and ``wait()`` returns it, whether it
/// came before or after the wait began. A running job's handler and the shutdown drain both try to
/// fulfil its result, so the drain can stop waiting for a handler that ignores cancellation.
/// Every job passes through one, so it uses an unsafe continuation: the lock guarantees the single
/// resume that a checked one would verify at a cost.
final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var delivered = false
        var waiter: UnsafeContinuation<Value, Never>?
    }
    private let state = Mutex(State())

    /// Delivers `value` unless a value was delivered already; returns whether this one was.
    @discardableResult
    func fulfil(_ value: Value) -> Bool {
        let (won, waiter) = self.state.withLock { state -> (Bool, UnsafeContinuation<Value, Never>?) in
            guard !state.delivered else { return (false, nil) }
            state.delivered = true
            state.value = value
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume(returning: value)
        return won
    }

    /// The delivered value, waiting for it if needed.
    func wait() async -> Value {
        await withUnsafeContinuation { continuation in
            let ready = self.state.withLock { state -> Value? in
                if state.delivered { return state.value }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
