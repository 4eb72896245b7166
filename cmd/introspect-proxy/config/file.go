package config

import (
	"fmt"
	"io"
	"os"
)

// The largest files the configuration names: the configuration file,
// certificates and keys, and secrets (a client secret, a Redis password, a
// bearer token).
const (
	MaxFileSize       = 1 << 20
	MaxSecretFileSize = 64 << 10
)

// ReadFile reads a file the configuration names: a regular file, after
// symbolic links, of at most limit bytes. A FIFO or a device is refused
// rather than read (it could block start-up, or never end), and so is a
// larger file, before its bytes are read.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlocking, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", quote(path))
	case fi.Size() > limit:
		return nil, fmt.Errorf("%s is larger than %d bytes", quote(path), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case err != nil:
		return nil, err
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("%s is larger than %d bytes", quote(path), limit)
	}
	return data, nil
}
