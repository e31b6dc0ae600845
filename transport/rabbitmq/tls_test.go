package rabbitmq

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// tlsProxy terminates TLS with a fresh self-signed certificate for
// 127.0.0.1 and forwards to the plain test broker. It returns the amqps URL
// and the path of the certificate's PEM file.
func tlsProxy(t *testing.T, rawURL string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "switchyard test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	require.NoError(t, err)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, certPEM, 0o600))

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
