package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs://
	_ "gocloud.dev/blob/s3blob"  // s3://
	"gocloud.dev/gcerrors"
)

// ErrNotFound is returned by Open for a key that holds nothing.
var ErrNotFound = errors.New("storage: not found")

// ErrCannotSign is returned by SignedURL when the bucket cannot sign URLs
// (a local directory).
var ErrCannotSign = errors.New("storage: this bucket cannot sign URLs")

// Storage stores blobs by key. Keys are slash-separated relative paths of
// letters, digits and "._-". Implementations are safe for concurrent use.
type Storage interface {
	// Create returns a writer for key. What is written becomes visible under
	// key, replacing what was there, only when Close returns nil; if ctx is
	// done before Close, Close discards it and returns an error, so a
	// failed export never leaves a partial file behind.
	Create(ctx context.Context, key string) (io.WriteCloser, error)
	// Open returns a reader of key's content, or an error wrapping
	// ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Signer is a Storage that can hand out time-limited URLs to read a key
// without credentials (S3 presigned URLs, Cloud Storage signed URLs).
type Signer interface {
	// SignedURL returns a URL that reads key with GET for ttl, or an error
	// wrapping ErrCannotSign.
	SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// Bucket is a Storage on a gocloud.dev/blob bucket. It implements Signer
// (where the bucket can sign) and RemovePartials.
type Bucket struct {
	b   *blob.Bucket
	dir string // the directory of a file:// bucket, else ""
}

// Open returns the Bucket that rawURL names (see the package doc).
func Open(rawURL string) (*Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: URL does not parse: %w", err)
	}
	switch u.Scheme {
	case "file":
		dir := u.Path
		if u.Opaque != "" {
			dir = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage: file URL names host %.40q; want file:///ABSOLUTE/DIR or file:RELATIVE/DIR", u.Host)
		}
		return NewDir(dir)
	case "s3", "gs":
		b, err := blob.OpenBucket(context.Background(), rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage: open %s://%s: %w", u.Scheme, u.Host, err)
		}
		return &Bucket{b: b}, nil
	default:
		return nil, fmt.Errorf("storage: URL scheme %.20q not supported (want file, s3 or gs)", u.Scheme)
	}
}

// NewDir returns the Bucket in directory dir, creating it if needed:
// gocloud.dev's fileblob, writing each file to a temporary file beside it
// (DIR/KEY.<hex>.tmp) that is renamed into place on Close, without
// attribute side files.
func NewDir(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("storage: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &Bucket{b: b, dir: abs}, nil
}

// Dir returns the directory of a file:// bucket, "" for another.
func (s *Bucket) Dir() string { return s.dir }

// Close closes the bucket.
func (s *Bucket) Close() error { return s.b.Close() }

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || !fs.ValidPath(key) {
		return fmt.Errorf("storage: invalid key %.60q", key)
	}
	for _, c := range key {
		if !(c == '/' || c == '.' || c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("storage: invalid key %.60q: character %q", key, c)
		}
	}
	return nil
}

// Create implements Storage.
func (s *Bucket) Create(ctx context.Context, key string) (io.WriteCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	w, err := s.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "text/csv; charset=utf-8"})
	if err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", key, err)
	}
	return &writer{w: w, ctx: ctx}, nil
}

// writer makes Close return ctx's error when ctx ended, as blob's Writer
// then aborts the write.
type writer struct {
	w   *blob.Writer
	ctx context.Context
}

func (w *writer) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *writer) Close() error {
	err := w.w.Close()
	if cerr := w.ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// Open implements Storage.
func (s *Bucket) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	r, err := s.b.NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", key, err)
	}
	return r, nil
}

// SignedURL implements Signer: a presigned GET URL of key valid for ttl, on
// s3:// and gs:// buckets whose credentials can sign; ErrCannotSign for a
// directory.
func (s *Bucket) SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	u, err := s.b.SignedURL(ctx, key, &blob.SignedURLOptions{Expiry: ttl, Method: "GET"})
	if gcerrors.Code(err) == gcerrors.Unimplemented {
		return "", fmt.Errorf("%w: %w", ErrCannotSign, err)
	}
	if err != nil {
		return "", fmt.Errorf("storage: sign %s: %w", key, err)
	}
	return u, nil
}

// RemovePartials removes what a writer of key that died left behind (a
// process killed with -9 before Close), and returns how many files it
// removed: in a directory, the temporary files KEY.<hex>.tmp. Buckets keep
// no partial object visible (an unfinished S3 multipart upload is removed
// by the bucket's lifecycle rule, AbortIncompleteMultipartUpload), so
// there it removes nothing. Call it only while no other writer of key
// runs.
func (s *Bucket) RemovePartials(_ context.Context, key string) (int, error) {
	if s.dir == "" {
		return 0, nil
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	pattern := filepath.Join(s.dir, filepath.FromSlash(key)) + ".*.tmp"
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	n := 0
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("storage: remove partial file: %w", err)
		}
		n++
	}
	return n, nil
}
