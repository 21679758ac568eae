// Package index is RocketMQ's message-key index (QUERY_MESSAGE): files made
// of a 40-byte header, a table of hash slots and 20-byte entries chained per
// slot, mapping topic#key to commit-log offsets. The byte layout and the
// crash walk-through are in FORMAT.md next to this file.
//
// # Goroutines and ownership
//
//   - One dispatcher goroutine calls Put, in commit-log order. Put writes
//     into the newest file's mapping under Service.mu and creates the next
//     file when the newest is full; it never syncs.
//   - Any number of goroutines call Query (QUERY_MESSAGE, VIEW by key). It
//     reads the mappings under the read lock.
//   - The engine's flush goroutine calls Flush: msync of the changed files,
//     returning the endTimestamp of a newly durable full file for the
//     checkpoint's indexMsgTimestamp.
//   - The engine's maintenance goroutine calls DeleteFilesBelow (retention);
//     recovery calls DropNewerThan after an abnormal exit, before dispatch.
//
// Query compares key hashes only: the caller must read each returned record
// and keep it only if its topic and keys really match.
//
// # Locks
//
// fileMu serializes the operations that msync, unmap or remove files
// (Flush, DeleteFilesBelow, DropNewerThan, Close); mu (a RWMutex) guards the
// file list, the mapped bytes and the cached headers. Order: fileMu, then
// mu. A file is detached from the list under mu before it is unmapped, so
// no Query can be reading it.
//
// The package holds commit-log offsets as plain int64 values and imports no
// other storage package.
package index
