//go:build !unix

package main

import "os"

// withUmask runs create: this system has no umask.
func withUmask[T any](_ os.FileMode, create func() (T, error)) (T, error) {
	return create()
}
