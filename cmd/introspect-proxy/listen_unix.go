//go:build unix

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// umaskMu keeps two sockets from being created under each other's umask.
var umaskMu sync.Mutex

// listenUnix listens on a unix socket at path whose file has mode from the
// start. It holds an exclusive lock on PATH.lock while it listens, so that
// a second proxy for the same path fails at once. A socket file at path
// that refuses connections, which a proxy that did not shut down leaves,
// is removed; one something accepts connections on, or any other file, is
// not, and listening fails. The socket file is removed when the listener
// is closed; the lock file stays.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	ln, err := listenLocked(lock, path, mode)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &lockedListener{Listener: ln, lock: lock}, nil
}

// listenLocked locks lock, the open lock file, then does listenUnix's work.
func listenLocked(lock *os.File, path string, mode os.FileMode) (net.Listener, error) {
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s.lock is held by another process: another proxy listens on %s", path, path)
		}
		return nil, fmt.Errorf("locking %s.lock: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s is there and is not a socket: not removed", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			return nil, fmt.Errorf("%s: a socket in use: not removed", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	// The file is created with 0777 less the umask: the umask is set to
	// give it mode exactly, for the moment of its creation only (the
	// process creates no other file meanwhile), so that nobody outside mode
	// can connect before a chmod would have run, and no chmod (which
	// follows a symbolic link put in the socket's place) runs at all.
	umaskMu.Lock()
	old := syscall.Umask(0o777 &^ int(mode.Perm()))
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != mode.Perm() {
		ln.Close()
		return nil, fmt.Errorf("%s: the socket was not created with mode %#o", path, mode.Perm())
	}
	return ln, nil
}

// lockedListener is a unix socket's listener with the lock of its path.
type lockedListener struct {
	net.Listener
	lock *os.File
}

func (l *lockedListener) Close() error {
	err := l.Listener.Close() // removes the socket file
	l.lock.Close()
	return err
}
