package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// ErrNotFound is returned by Open for a key that holds nothing.
var ErrNotFound = errors.New("storage: not found")

// Storage stores blobs by key. Keys are slash-separated relative paths of
// letters, digits and "._-". Implementations are safe for concurrent use.
type Storage interface {
	// Create returns a writer for key. What is written becomes visible under
	// key, replacing what was there, only when Close returns nil; if ctx is
	// done before Close, Close discards it and returns ctx's error, so a
	// failed export never leaves a partial file behind.
	Create(ctx context.Context, key string) (io.WriteCloser, error)
	// Open returns a reader of key's content, or an error wrapping
	// ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Open returns the Storage that rawURL names (see the package doc).
func Open(rawURL string) (Storage, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: URL %q does not parse: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		dir := u.Path
		if u.Opaque != "" {
			dir = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage: file URL %q names host %q; want file:///ABSOLUTE/DIR or file:RELATIVE/DIR", rawURL, u.Host)
		}
		return NewDir(dir)
	default:
		return nil, fmt.Errorf("storage: URL scheme %q not supported (want file)", u.Scheme)
	}
}
