// Package spool is Sluice's durable on-disk queue: a FIFO of opaque byte
// records, one directory per output, with one appender (the router, called
// from many goroutines) and one reader (the output's worker). It imports
// nothing else of Sluice; the router encodes events to bytes.
//
// # Directory layout
//
//	<dir>/
//	  LOCK                          flock(2)ed while a Queue has the directory open
//	  00000000000000000001.seg      segment; the name is the seq of its first record
//	  00000000000000052113.seg      (20 digits, so that names sort in seq order)
//	  ack                           acknowledgement state
//	  *.corrupt                     damaged bytes moved aside by recovery (never read)
//
// Temporary files (ack.tmp, *.seg.tmp) are removed at Open.
//
// # Segment format
//
// A segment starts with an 8-byte header: magic "SLSG", version u16 (1),
// reserved u16 (0). Records follow back to back, little endian:
//
//	len       u32  payload length (<= MaxRecord, at most 1 GiB)
//	crc       u32  CRC-32C (Castagnoli) over seq || appended || payload
//	seq       u64  sequence number: +1 per record, the first equals the file name
//	appended  i64  append time, Unix nanoseconds
//	payload   len bytes
//
// A record never spans segments. A segment rolls before a write would take
// it past SegmentBytes (a record larger than that gets a segment of its
// own): the old file is fsynced and closed, the new one created with its
// header and the directory fsynced. The CRC is not chained: a damaged record
// does not invalidate the records after it. Segments hold consecutive seqs;
// there may be gaps between segments (acknowledged or lost seqs).
//
// # Ack file format
//
//	magic "SLAK" | version u16 (1) | reserved u16 | floor u64 | n u32 |
//	n × (lo u64 | hi u64) | crc32c u32 over all preceding bytes
//
// floor is the lowest unacknowledged seq; the ranges are acknowledged seqs
// above it (inclusive, sorted, disjoint, not adjacent). At most 1024 ranges
// are written, the lowest ones; the others are forgotten, which means
// redelivery, never loss. The file is replaced atomically (write ack.tmp,
// fsync, rename, fsync the directory), at most about ten times a second
// (coalesced) and at Close. Segments whose every record the persisted state
// covers are deleted after it is written; the active segment never is.
// (Known limit: if more than 1024 ranges are pending and a range that
// covered an already deleted segment is left out, the next Open reports
// that segment's seqs as lost although they were delivered.)
//
// # Delivery semantics
//
// Delivery from the queue is at-least-once. A record is removed only after
// Ack and after the ack state covering it is on disk. If the process dies,
// the records acknowledged since the last ack-file write (up to ~100 ms of
// acks, plus acks that were never made for records already delivered) are
// delivered again: that is the duplicate window. Records in acknowledged
// ranges above the floor are not delivered again.
//
// What an Append that returned nil can lose depends on the fsync policy:
//
//   - "always": nothing. Append returns after fdatasync covering its
//     records. Concurrent Appends are group-committed: one caller writes
//     all pending batches with one write(2) and one fdatasync, then hands
//     the role to a waiting caller.
//   - interval (e.g. "1s", the default callers use): Append returns after
//     write(2); a ticker fdatasyncs. A process crash loses nothing (the data
//     is in the page cache); an OS crash or power loss can lose the records
//     appended in the last interval (plus the time the fsync takes).
//   - "never": data reaches disk when the kernel writes it back, and at
//     segment roll, Sync and Close. An OS crash or power loss can lose
//     everything appended to the active segment (up to SegmentBytes).
//
// Sync is a barrier for callers that must checkpoint (e.g. tail offsets):
// when it returns nil, everything appended before it is on stable storage.
//
// # Recovery
//
// Open takes LOCK (ErrLocked if held), reads the ack file (missing or
// corrupt: nothing is considered acknowledged; every record is delivered
// again, none is lost) and verifies every segment not already covered by
// it, record by record (length bound, seq continuity, CRC):
//
//   - Damage running to the end of the last segment is a torn write: the file
//     is truncated after the last good record and fsynced; the bytes are
//     logged and counted (Stats.TruncatedBytes).
//   - Any other damage (a middle segment, or a damaged record followed by
//     valid ones) is quarantined: the bytes are copied to *.corrupt, the
//     valid records after it are found again (the next record with a valid
//     CRC and a plausible seq) and moved to a segment file of their own, and
//     the file is cut after its valid prefix. The seqs missing in between
//     are logged at error level, counted (LostRecords, QuarantinedBytes) and
//     treated as acknowledged. A bad segment header quarantines the whole
//     file. Recovery never refuses to start because of bad data.
//
// Open reads every segment not yet acknowledged once, so its time grows
// with the backlog (disk read speed; CRC-32C is hardware-accelerated).
//
// New appends then go to a new segment named after the next seq; writing
// never resumes inside a possibly damaged file. Records are verified again
// when read; damage found then (the file changed after Open) costs the rest
// of that segment, counted in LostRecords.
//
// # Capacity
//
// MaxBytes bounds the record bytes (headers and payloads) of the segments
// holding at least one unacknowledged record; the 8-byte segment headers
// are not counted.
// Space comes back a whole segment at a time, so MaxBytes must be at least
// 2×SegmentBytes; fully acknowledged segments (including the active one)
// do not count even before they are deleted, so disk usage can exceed
// MaxBytes by about one segment. When full, Append waits for Ack
// (DropWhenFull=false) or drops the records that do not fit and counts them
// (Stats.Dropped).
//
// # Errors
//
// A write or fsync error on a segment is sticky: it is logged once at error
// level and every later Append returns it (fsync is never retried on the
// same file). Reading and acknowledging continue.
package spool
