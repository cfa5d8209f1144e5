/// The answers of get-or-lock.
package enum GetOrLockReply: Sendable {
    case fresh(StoredEntry)
    /// Fresh, but XFetch fired and this caller won the refresh lease.
    case early(StoredEntry, token: Int64)
    /// Stale; `token` is set when this caller won the refresh lease, else `lockRemaining` is the holder's.
    case stale(StoredEntry, token: Int64?, lockRemaining: Duration)
    case leader(token: Int64, now: Int64)
    case wait(holder: Int64, lockRemaining: Duration, now: Int64)
    /// One of the entry's keys holds something that is not ours: the value key a bad header, no
    /// expiry or another type; the lock or fence key another type. Only that key is repaired.
    case corrupt(reason: String, key: EntryKeyRole)
}
