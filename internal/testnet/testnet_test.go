package testnet_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testnet"
)

// TestSilent: a connection is accepted but nothing ever arrives on it,
// until Close, which ends it.
func TestSilent(t *testing.T) {
	s, err := testnet.NewSilent()
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", s.Addr(), 30*time.Second)
	require.NoError(t, err)
	defer c.Close()

	require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "silence, not %v", err)

	require.NoError(t, s.Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "Close ends held connections")
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "Close ends held connections, before the deadline")
	_, err = net.DialTimeout("tcp", s.Addr(), time.Second)
	assert.Error(t, err, "no longer listening")
}
