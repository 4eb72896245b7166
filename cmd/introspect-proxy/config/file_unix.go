//go:build unix

package config

import "syscall"

// openNonBlocking opens a FIFO without waiting for a writer, so that
// ReadFile can refuse it.
const openNonBlocking = syscall.O_NONBLOCK
