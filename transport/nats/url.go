package nats

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// servers is what the URL says about the servers: their URLs without user
// info, for nats.Connect, and the credentials it carried.
type servers struct {
	urls           []string // scheme://host:port
	hosts          []string // host:port, for errors and logs
	user, password string
	token          string
}

// parseServers splits a nats:// or tls:// URL with a comma-separated host
// list into server URLs and credentials.
func parseServers(raw string) (servers, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return servers{}, fmt.Errorf("nats: URL %s does not parse", redactURL(raw))
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return servers{}, fmt.Errorf("nats: URL scheme %q, want nats or tls", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return servers{}, fmt.Errorf("nats: URL %s: want %s://HOST[:PORT][,HOST[:PORT]...]", redactURL(raw), u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return servers{}, fmt.Errorf("nats: URL %s: a path is not allowed", redactURL(raw))
	}
	var s servers
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			s.user, s.password = u.User.Username(), p
		} else {
			s.token = u.User.Username()
		}
	}
	for h := range strings.SplitSeq(u.Host, ",") {
		if h == "" {
			return servers{}, fmt.Errorf("nats: URL %s has an empty host", redactURL(raw))
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port: a name, an IPv4 address or a bracketed IPv6
			// address. Anything else with a ':' is malformed ("::1",
			// "a:b:c"), and would make a server URL that does not parse.
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				host = h[1 : len(h)-1]
			} else if !strings.ContainsAny(h, ":[]") {
				host = h
			} else {
				return servers{}, fmt.Errorf("nats: URL %s: host %q is not HOST[:PORT] (bracket IPv6 addresses)", redactURL(raw), h)
			}
			port = "4222"
		}
		if host == "" {
			return servers{}, fmt.Errorf("nats: URL %s has an empty host", redactURL(raw))
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return servers{}, fmt.Errorf("nats: URL %s: port %q out of range", redactURL(raw), port)
		}
		hp := net.JoinHostPort(host, port)
		s.hosts = append(s.hosts, hp)
		s.urls = append(s.urls, u.Scheme+"://"+hp)
	}
	return s, nil
}

// redactURL returns raw with its password, or its token (a user without a
// password), replaced by "xxxxx".
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return redact.URL(raw)
	}
	if _, ok := u.User.Password(); ok {
		return redact.URL(raw)
	}
	u.User = url.User("xxxxx")
	return u.String()
}

// queryParams are the query parameters OpenURL reads, in the order the
// package documentation lists them.
var queryParams = []string{
	"namespace", "replicas", "storage", "max_age", "max_bytes", "max_msgs", "duplicate_window",
	"ack_wait", "max_ack_pending", "dead_letter_max", "dead_letter_max_bytes", "max_message_bytes",
	"prefetch", "publish_window", "request_timeout", "connect_timeout", "name", "creds", "nkey", "tls_ca", "tls_cert", "tls_key",
}

// parseURL turns a nats:// or tls:// URL with query parameters into a
// Config (see OpenURL).
func parseURL(u *url.URL) (Config, error) {
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return Config{}, fmt.Errorf("nats: URL scheme %q, want nats or tls", u.Scheme)
	}
	var (
		c    Config
		errs []error
	)
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "namespace":
			c.Namespace = v
		case "replicas":
			c.Replicas, err = positiveInt(v)
		case "storage":
			c.Storage = Storage(v)
		case "max_age":
			c.MaxAge, err = positiveDuration(v)
		case "max_bytes":
			c.MaxBytes, err = positiveInt64(v)
		case "max_msgs":
			c.MaxMsgs, err = positiveInt64(v)
		case "duplicate_window":
			c.DuplicateWindow, err = positiveDuration(v)
		case "ack_wait":
			c.AckWait, err = positiveDuration(v)
		case "max_ack_pending":
			c.MaxAckPending, err = positiveInt(v)
		case "dead_letter_max":
			c.DeadLetterMax, err = positiveInt(v)
		case "dead_letter_max_bytes":
			c.DeadLetterMaxBytes, err = positiveInt64(v)
		case "max_message_bytes":
			c.MaxMessageBytes, err = positiveInt(v)
		case "prefetch":
			c.Prefetch, err = positiveInt(v)
		case "publish_window":
			c.PublishWindow, err = positiveInt(v)
		case "request_timeout":
			c.RequestTimeout, err = positiveDuration(v)
		case "connect_timeout":
			c.ConnectTimeout, err = positiveDuration(v)
		case "name":
			c.Name = v
		case "creds":
			c.CredsFile = v
		case "nkey":
			c.NKeySeedFile = v
		case "tls_ca":
			c.RootCAsFile = v
		case "tls_cert":
			c.CertFile = v
		case "tls_key":
			c.KeyFile = v
		default:
			err = fmt.Errorf("unknown (known: %s)", strings.Join(queryParams, ", "))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("nats: query parameter %s=%q: %w", k, v, err))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	base := *u
	base.RawQuery, base.ForceQuery = "", false
	c.URL = base.String()
	return c, c.Validate()
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n <= 0 {
		return 0, errors.New("want a positive integer")
	}
	return n, nil
}

func positiveInt64(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n <= 0 {
		return 0, errors.New("want a positive integer")
	}
	return n, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration such as 30s or 500ms")
	}
	if d <= 0 {
		return 0, errors.New("want a positive duration")
	}
	return d, nil
}
