/// Which of an entry's keys holds something that is not ours.
package enum EntryKeyRole: String, Sendable {
    case value, lock, fence
}
