//go:build unix

package main

import (
	"os"
	"sync"
	"syscall"
)

// umaskMu keeps two sockets from being created under each other's umask.
var umaskMu sync.Mutex

// withUmask runs create, which makes a file, with the process's umask
// narrowed to mode: no one outside mode can open the file before a chmod
// would have run.
func withUmask[T any](mode os.FileMode, create func() (T, error)) (T, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o777 &^ int(mode.Perm()))
	defer syscall.Umask(old)
	return create()
}
