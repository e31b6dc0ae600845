package testcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testcert"
)

// serveTLS accepts TLS connections on 127.0.0.1 with cert, completing each
// handshake, until the test ends; it returns the address.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// dial makes a TLS handshake with addr, trusting only roots.
func dial(addr string, roots *x509.CertPool) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second}, Config: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "test-ca")
	require.NoError(t, err)
	wrong, err := testcert.NewCA(dir, "other-ca")
	require.NoError(t, err)
	srv, err := ca.IssueServer(dir)
	require.NoError(t, err)
	addr := serveTLS(t, srv.Certificate)

	t.Run("right CA", func(t *testing.T) {
		require.NoError(t, dial(addr, ca.Pool()))
	})
	t.Run("right CA from its PEM file", func(t *testing.T) {
		pemBytes, err := os.ReadFile(ca.File)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pemBytes))
		require.NoError(t, dial(addr, pool))
	})
	t.Run("server from its PEM files", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
		require.NoError(t, err)
		require.NoError(t, dial(serveTLS(t, cert), ca.Pool()))
	})
	t.Run("wrong CA fails", func(t *testing.T) {
		err := dial(addr, wrong.Pool())
		require.Error(t, err)
		var unknown x509.UnknownAuthorityError
		assert.True(t, errors.As(err, &unknown), "want an unknown authority, got %v", err)
	})
	t.Run("two servers share a dir", func(t *testing.T) {
		other, err := ca.IssueServer(dir)
		require.NoError(t, err)
		assert.NotEqual(t, srv.CertFile, other.CertFile)
		assert.NotEqual(t, srv.KeyFile, other.KeyFile)
		require.NoError(t, dial(serveTLS(t, other.Certificate), ca.Pool()))
	})
}
