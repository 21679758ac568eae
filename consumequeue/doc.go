// Package consumequeue stores RocketMQ consume queues: for every (topic,
// queueId) a logical queue of 20-byte entries (commit-log offset, record
// size, tag hash code) whose index is the message's queue offset. The
// on-disk format and the crash walk-through are in FORMAT.md next to this
// file.
//
// # Goroutines and ownership
//
//   - One dispatcher goroutine calls Queue.Put (in commit-log order). Put
//     only appends to an in-memory pending buffer under the queue's mutex; it
//     never does I/O, so pulls and flushes never slow the dispatcher down.
//   - Any number of reader goroutines (pulls, offset queries) call Get, Read,
//     MinOffset, MaxOffset, SearchOffsetByTime. An entry is visible to them
//     as soon as Put returns: readers copy it from the pending buffer until
//     it has been written to its file, and pread it from the file after.
//   - The engine's flush goroutine calls Store.Flush / Queue.Flush: it
//     pwrites the pending buffer to the files and fdatasyncs them.
//   - The engine's maintenance goroutine calls DeleteBelow (retention);
//     recovery calls TruncateDirty before dispatch starts.
//
// The package holds commit-log offsets as plain int64 values and imports no
// other storage package.
//
// # Locks
//
// Store.mu guards the queue map. Each Queue has two locks, taken in this
// order: wmu serializes the write side's file I/O (write-out, sync,
// truncation, file removal); mu (a RWMutex) guards the in-memory state
// (files, pending buffer, offsets) and is never held across I/O except
// while loading. A reader pins a file with a reference count before
// releasing mu for its pread; a removed file is closed by its last user.
//
// # Open files
//
// A store opens a queue's files when they are used and keeps at most
// Config.MaxOpenFiles of them open (DefaultMaxOpenFiles: half of
// RLIMIT_NOFILE, at most 65 536): every use pins its file; the least
// recently used idle file is closed when the budget is reached, after an
// fdatasync when it holds unsynced bytes (files.go, FORMAT.md "Open
// files"). The file-cache lock is never held across I/O and never taken
// with a queue's mu held.
//
// # Failures
//
// A failed write or sync takes only its queue out of service (Put and
// reads return ErrUnavailable) until the engine rebuilds it with Reopen,
// a redispatch and MarkRepaired; Store.LostFloor tells the engine how far
// back that redispatch reaches (fault.go, FORMAT.md).
//
// # Recovery
//
// Open scans each queue from its 3rd-newest file, keeps entries while they
// are valid (commit-log offset ≥ 0 and size > 0), truncates after the first
// invalid one and removes later files. The engine then calls
// Store.TruncateDirty with the recovered commit-log end, Store.DeleteBelow
// with the commit-log min offset, and restarts dispatch at
// max(Store.MaxPhysicalOffset(), commit-log min); Put skips what the queues
// already hold.
package consumequeue
