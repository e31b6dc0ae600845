package rabbitmq

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testcert"
	"github.com/switchyard-go/switchyard/pubsub"
)

// tlsProxy terminates TLS with a fresh certificate for 127.0.0.1, signed
// by a CA of the test's own (internal/testcert), and forwards to the plain
// test broker. It returns the amqps URL and the path of the CA's PEM file.
func tlsProxy(t *testing.T, rawURL string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "switchyard-test-ca")
	require.NoError(t, err)
	srv, err := ca.IssueServer(dir)
	require.NoError(t, err)
	caFile, cert := ca.File, srv.Certificate

	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5672")
	}
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
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	u.Scheme = "amqps"
	u.Host = ln.Addr().String()
	return u.String(), caFile
}

// TestAMQPS: amqps:// URLs connect over TLS, verifying the broker's
// certificate against cacertfile or Config.TLSConfig.
func TestAMQPS(t *testing.T) {
	ctx := testCtx(t)
	amqpsURL, caFile := tlsProxy(t, testURL(t, ""))

	t.Run("cacertfile", func(t *testing.T) {
		topic := uniqueTopic(t, "g")
		b := openTest(t, amqpsURL+"?cacertfile="+url.QueryEscape(caFile))
		c := newCollector()
		subscribe(t, ctx, b, topic, "g", c.handler)
		require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "over-tls"}))
		assert.Equal(t, "over-tls", c.waitN(t, 1)[0].msg.ID)
	})
	t.Run("Config.TLSConfig", func(t *testing.T) {
		pem, err := os.ReadFile(caFile)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		b, err := New(ctx, Config{URL: amqpsURL, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, pubsub.WithLogger(testLogger()))
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.Ping(ctx))
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		u, err := url.Parse(amqpsURL)
		require.NoError(t, err)
		u.User = url.UserPassword("guest", "tls-Secr3t")
		_, err = OpenURL(ctx, u, pubsub.WithLogger(testLogger()))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
		assert.Contains(t, err.Error(), u.Host)
		assert.NotContains(t, err.Error(), "tls-Secr3t")
	})
}
