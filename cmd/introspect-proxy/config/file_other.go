//go:build !unix

package config

// openNonBlocking is unset where files are opened without blocking.
const openNonBlocking = 0
