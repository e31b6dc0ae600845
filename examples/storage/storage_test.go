package storage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/storage"
)

// roundTrip checks what every bucket must do: a file appears only on a
// successful Close, an aborted write leaves nothing, a missing key is
// ErrNotFound.
func roundTrip(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, "exports/a.csv")
	require.NoError(t, err)
	_, err = io.WriteString(w, "x,y\n")
	require.NoError(t, err)
	_, err = s.Open(ctx, "exports/a.csv")
	assert.ErrorIs(t, err, storage.ErrNotFound, "not visible before Close")
	require.NoError(t, w.Close())

	r, err := s.Open(ctx, "exports/a.csv")
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, "x,y\n", string(b))

	cctx, cancel := context.WithCancel(ctx)
	w, err = s.Create(cctx, "exports/b.csv")
	require.NoError(t, err)
	_, _ = io.WriteString(w, "partial")
	cancel()
	assert.ErrorIs(t, w.Close(), context.Canceled)
	_, err = s.Open(ctx, "exports/b.csv")
	assert.ErrorIs(t, err, storage.ErrNotFound, "aborted write leaves nothing")
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open("file://" + filepath.ToSlash(dir))
	require.NoError(t, err)
	defer s.Close()
	roundTrip(t, s)
	left, err := os.ReadDir(filepath.Join(dir, "exports"))
	require.NoError(t, err)
	require.Len(t, left, 1, "no temporary or attribute files left")
	assert.Equal(t, "a.csv", left[0].Name())

	_, err = s.SignedURL(context.Background(), "exports/a.csv", time.Minute)
	assert.ErrorIs(t, err, storage.ErrCannotSign, "a directory cannot sign: downloads go through the service")

	// A writer killed before Close leaves its temporary file; RemovePartials
	// removes it, and only it.
	w, err := s.Create(context.Background(), "exports/c.csv")
	require.NoError(t, err)
	_, err = io.WriteString(w, "half a file")
	require.NoError(t, err)
	tmp, err := filepath.Glob(filepath.Join(dir, "exports", "c.csv.*.tmp"))
	require.NoError(t, err)
	require.Len(t, tmp, 1, "the writer's temporary file is next to the final path")
	n, err := s.RemovePartials(context.Background(), "exports/c.csv")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = os.Stat(tmp[0])
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, "exports", "a.csv"))
	assert.NoError(t, err)
	_ = w.Close()
}

// TestS3: the same against an S3 server (gofakes3) over real HTTP, through
// s3:// with an endpoint; a completed object gets a presigned URL that a
// plain HTTP client downloads.
func TestS3(t *testing.T) {
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("exports"))
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	s, err := storage.Open("s3://exports?region=us-east-1&use_path_style=true&endpoint=" + srv.URL)
	require.NoError(t, err)
	defer s.Close()
	roundTrip(t, s)

	u, err := s.SignedURL(context.Background(), "exports/a.csv", 5*time.Minute)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, srv.URL+"/exports/exports/a.csv?"), u)
	assert.Contains(t, u, "X-Amz-Expires=300")
	assert.NotContains(t, u, "test-secret")
	resp, err := http.Get(u)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "x,y\n", string(b))
	n, err := s.RemovePartials(context.Background(), "exports/a.csv")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestOpenRejects(t *testing.T) {
	for _, u := range []string{"ftp://bucket", "file://otherhost/x", "::"} {
		_, err := storage.Open(u)
		assert.Error(t, err, u)
	}
	s, err := storage.NewDir(t.TempDir())
	require.NoError(t, err)
	for _, key := range []string{"../x", "/abs", "a//b", "a b", ""} {
		_, err := s.Create(context.Background(), key)
		assert.Error(t, err, key)
		_, err = s.Open(context.Background(), key)
		assert.False(t, errors.Is(err, storage.ErrNotFound), key)
	}
}
