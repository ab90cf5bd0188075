//go:build unix

package tail

import (
	"os"
	"syscall"
)

// supported reports whether files have a device and inode here.
const supported = true

// statID returns the identity and link count of the file fi describes.
func statID(fi os.FileInfo) (id fileID, nlink uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	// Dev and Nlink have different integer types on different platforms.
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, uint64(st.Nlink), true
}
