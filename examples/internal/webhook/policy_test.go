package webhook_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/webhook"
)

// TestCheckURL: what is allowed without resolving anything.
func TestCheckURL(t *testing.T) {
	def := webhook.MustParsePolicy(webhook.DefaultAllow)
	custom := webhook.MustParsePolicy("hooks.example.com, *.partner.io, 10.1.0.0/16, 192.0.2.7")
	any := webhook.MustParsePolicy("*")
	for _, tc := range []struct {
		p     webhook.Policy
		url   string
		allow bool
	}{
		{def, "http://localhost:8099/hooks/export", true},
		{def, "http://127.0.0.1:8099/x", true},
		{def, "http://[::1]:8099/x", true},
		{def, "http://example.com/x", false},
		{def, "http://169.254.169.254/latest/meta-data/", false},
		{def, "http://10.0.0.1/x", false},
		{def, "ftp://localhost/x", false},
		{def, "http://user:pw@localhost/x", false},
		{def, "localhost:8099", false},
		{def, "http://localhost/" + strings.Repeat("a", 3000), false},
		{custom, "https://hooks.example.com/cb", true},
		{custom, "https://a.b.partner.io/cb", true},
		{custom, "https://partner.io.evil.com/cb", false},
		{custom, "http://10.1.2.3/cb", true},
		{custom, "http://10.2.0.1/cb", false},
		{custom, "http://192.0.2.7/cb", true},
		{custom, "http://localhost/cb", false},
		{any, "https://anything.example.org/cb", true},
		{any, "http://8.8.8.8/cb", true},
		{any, "http://127.0.0.1/cb", false},
		{any, "http://[fd00::1]/cb", false},
		{any, "http://[::ffff:127.0.0.1]/cb", false},
		{webhook.Policy{}, "http://localhost/x", false},
	} {
		_, err := tc.p.CheckURL(tc.url)
		if tc.allow {
			assert.NoError(t, err, tc.url)
		} else {
			assert.Error(t, err, tc.url)
			assert.Less(t, len(err.Error()), 200, "the URL is not echoed whole")
		}
	}
	_, err := webhook.ParsePolicy("good.example, bad name, 10.0.0.0/33")
	assert.ErrorContains(t, err, `"bad name"`)
	assert.ErrorContains(t, err, `"10.0.0.0/33"`)
}

// TestClientPinsAndRefuses: the client resolves a name once, refuses a
// name that resolves to a non-public address that is not listed (DNS
// pointing an allowed name at the loopback), connects to the address it
// checked, and does not follow redirects.
func TestClientPinsAndRefuses(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	loopback := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}

	// hooks.example.com is allowed by name, but resolves to 127.0.0.1,
	// which is not listed: refused before any connection.
	c := webhook.MustParsePolicy("hooks.example.com").WithLookup(loopback).Client(5*time.Second, nil)
	_, err := c.Post("http://hooks.example.com:"+port+"/cb", "application/json", nil)
	require.ErrorIs(t, err, webhook.ErrNotAllowed)
	assert.ErrorContains(t, err, "resolves to 127.0.0.1")
	assert.Zero(t, calls.Load())

	// With the loopback listed too, the name's checked address is dialled.
	var lookups atomic.Int32
	counting := func(ctx context.Context, h string) ([]netip.Addr, error) { lookups.Add(1); return loopback(ctx, h) }
	c = webhook.MustParsePolicy("hooks.example.com,127.0.0.0/8").WithLookup(counting).Client(5*time.Second, nil)
	resp, err := c.Post("http://hooks.example.com:"+port+"/cb", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, int32(1), lookups.Load(), "resolved once")

	// A redirect is the answer, not followed.
	resp, err = c.Post("http://127.0.0.1:"+port+"/redirect", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, int32(2), calls.Load())

	// A URL off the list is refused by the client itself.
	_, err = c.Post("http://10.0.0.1:"+port+"/cb", "application/json", nil)
	assert.ErrorIs(t, err, webhook.ErrNotAllowed)
}
