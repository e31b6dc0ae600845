package storage_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/storage"
)

func TestDirRoundTripAndAbort(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open("file://" + filepath.ToSlash(dir))
	require.NoError(t, err)
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
	left, err := os.ReadDir(filepath.Join(dir, "exports"))
	require.NoError(t, err)
	assert.Len(t, left, 1, "no temporary files left")
}

func TestOpenRejects(t *testing.T) {
	for _, u := range []string{"s3://bucket", "file://otherhost/x", "::"} {
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
