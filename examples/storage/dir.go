package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a Storage in a local directory: key a/b.csv is the file
// DIR/a/b.csv. Writes go to a temporary file that is renamed into place on
// Close, so readers see whole files only.
type Dir struct {
	root string
}

// NewDir returns the Storage in dir, creating it if needed.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("storage: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root returns the directory's absolute path.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || !fs.ValidPath(key) {
		return "", fmt.Errorf("storage: invalid key %q", key)
	}
	for _, c := range key {
		if !(c == '/' || c == '.' || c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", fmt.Errorf("storage: invalid key %q: character %q", key, c)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Create implements Storage.
func (d *Dir) Create(ctx context.Context, key string) (io.WriteCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &dirWriter{ctx: ctx, f: f, final: p}, nil
}

// Open implements Storage.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return f, nil
}

type dirWriter struct {
	ctx    context.Context
	f      *os.File
	final  string
	closed bool
}

func (w *dirWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

func (w *dirWriter) Close() error {
	if w.closed {
		return errors.New("storage: writer already closed")
	}
	w.closed = true
	tmp := w.f.Name()
	err := w.ctx.Err()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("storage: %w", cerr)
	}
	if err == nil {
		if rerr := os.Rename(tmp, w.final); rerr != nil {
			err = fmt.Errorf("storage: %w", rerr)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
