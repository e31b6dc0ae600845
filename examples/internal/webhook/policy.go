// Package webhook decides where the example services may send webhooks
// whose URL a client supplied (an export request's CallbackUrl), so that
// the notifier cannot be made to call internal services (SSRF).
//
// A Policy is an allow-list. Its default, DefaultAllow, is loopback only:
// the demo and the binaries on one machine work out of the box, and
// nothing else is reachable until configured. A URL is allowed when:
//
//   - its scheme is http or https, it has a host and no user:password, and
//     it is at most MaxURLBytes long;
//   - its host name matches an entry ("hooks.example.com",
//     "*.example.com" for any subdomain, "*" for any host name), or its
//     host is an IP address inside an allowed network ("10.1.0.0/16",
//     "192.0.2.7");
//   - every address the name resolves to is public (not loopback, private,
//     link-local, unique-local, carrier-grade NAT, unspecified or
//     multicast) or inside an allowed network. The name is resolved once
//     per call and the connection is made to the address that was
//     checked, so a DNS answer that changes between check and connect
//     (DNS rebinding) cannot redirect it;
//   - redirects are never followed: a 3xx answer is the webhook's answer.
//
// CheckURL checks what can be checked without the network (at request
// time, for a prompt 400); Client enforces all of it on every call.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// DefaultAllow is the allow-list when none is configured: loopback only.
const DefaultAllow = "localhost,127.0.0.0/8,::1/128"

// MaxURLBytes is the longest URL a Policy allows.
const MaxURLBytes = 2048

// ErrNotAllowed is wrapped by the errors of a URL or address the Policy
// refuses.
var ErrNotAllowed = errors.New("webhook: not allowed")

// Policy is an allow-list of webhook destinations (see the package doc).
// The zero value allows nothing. It is safe for concurrent use.
type Policy struct {
	names []string // host names, "*.suffix" patterns, or "*"
	nets  []netip.Prefix
	// lookup resolves host names (default net.DefaultResolver.LookupNetIP).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// ParsePolicy parses a comma-separated allow-list: host names, "*.domain",
// "*", IP addresses and CIDR networks. An empty list allows nothing.
func ParsePolicy(list string) (Policy, error) {
	var p Policy
	var errs []error
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.Contains(e, "/"):
			n, err := netip.ParsePrefix(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("webhook: allow-list entry %q is not a network", e))
				continue
			}
			p.nets = append(p.nets, n.Masked())
		default:
			if a, err := netip.ParseAddr(e); err == nil {
				p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if e != "*" && !validName(strings.TrimPrefix(e, "*.")) {
				errs = append(errs, fmt.Errorf("webhook: allow-list entry %q is not a host name, *.domain, *, an IP address or a network", e))
				continue
			}
			p.names = append(p.names, e)
		}
	}
	return p, errors.Join(errs...)
}

// MustParsePolicy is ParsePolicy for lists known to be valid; it panics
// on an error.
func MustParsePolicy(list string) Policy {
	p, err := ParsePolicy(list)
	if err != nil {
		panic(err)
	}
	return p
}

// WithLookup returns p resolving host names with lookup (tests use it to
// play DNS).
func (p Policy) WithLookup(lookup func(ctx context.Context, host string) ([]netip.Addr, error)) Policy {
	p.lookup = lookup
	return p
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// CheckURL parses raw and checks it against p without resolving it: the
// scheme, the host's name or IP address, the length. Its error, wrapping
// ErrNotAllowed or saying what is malformed, quotes no more than a short
// prefix of raw.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLBytes {
		return nil, fmt.Errorf("URL is %d bytes, at most %d allowed", len(raw), MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, errors.New("URL must not hold a user name or password")
	}
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.addrAllowed(a.Unmap(), false) {
			return nil, fmt.Errorf("%w: address %s is not on the allow-list", ErrNotAllowed, a)
		}
		return u, nil
	}
	if !p.nameAllowed(host) {
		return nil, fmt.Errorf("%w: host %.60q is not on the allow-list", ErrNotAllowed, host)
	}
	return u, nil
}

func (p Policy) nameAllowed(host string) bool {
	host = strings.TrimSuffix(host, ".")
	for _, n := range p.names {
		switch {
		case n == "*", n == host:
			return true
		case strings.HasPrefix(n, "*.") && strings.HasSuffix(host, n[1:]):
			return true
		}
	}
	return false
}

// addrAllowed: a in an allowed network, or public and reached by an
// allowed name (named) or with "*" allowed.
func (p Policy) addrAllowed(a netip.Addr, named bool) bool {
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	if !public(a) {
		return false
	}
	return named || p.nameAllowed("*")
}

// nonPublic are the ranges that are never reached without being listed.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 of any IPv4 address
}

func public(a netip.Addr) bool {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, n := range nonPublic {
		if n.Contains(a) {
			return false
		}
	}
	return true
}

// Client returns an HTTP client that enforces p on every request: the URL
// check, one resolution per connection with each address checked, the
// connection made to the checked address, no redirects. base, when not
// nil, wraps the transport (for tracing); timeout bounds each call.
func (p Policy) Client(timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // a proxy would resolve the name itself, unchecked
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.dial(ctx, dialer, network, addr)
		},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        10,
		IdleConnTimeout:     30 * time.Second,
	}
	var rt http.RoundTripper = checkingTransport{p: p, next: tr}
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkingTransport checks each request's URL before it is sent.
type checkingTransport struct {
	p    Policy
	next http.RoundTripper
}

func (t checkingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, err := t.p.CheckURL(r.URL.String()); err != nil {
		return nil, err
	}
	return t.next.RoundTrip(r)
}

// dial resolves addr's host once, checks every address, and connects to
// the first one that answers.
func (p Policy) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	named := false
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		named = true
		lookup := p.lookup
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("webhook: %s has no address", host)
	}
	for _, a := range addrs {
		if !p.addrAllowed(a.Unmap(), named) {
			return nil, fmt.Errorf("%w: %s resolves to %s, which is not on the allow-list", ErrNotAllowed, host, a.Unmap())
		}
	}
	var last error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}
