//go:build !unix

package tail

import "os"

// supported reports whether files have a device and inode here: the tail
// input needs them to tell a rotated file from its successor.
const supported = false

func statID(os.FileInfo) (fileID, uint64, bool) { return fileID{}, 0, false }
