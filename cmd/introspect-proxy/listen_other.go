//go:build !unix

package main

import (
	"errors"
	"net"
	"os"
)

// listenUnix refuses: a socket's mode, which decides who may connect, is
// not kept on this system.
func listenUnix(string, os.FileMode) (net.Listener, error) {
	return nil, errors.New("unix sockets need a unix system: this one does not keep a socket's file mode, which decides who may connect")
}
