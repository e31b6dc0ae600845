package rabbitmq

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// node is one broker address of a URL: its own AMQP URL (the URL with only
// this host) and host:port for messages.
type node struct {
	url  string
	addr string
}

// parseNodes splits a URL whose host part lists several nodes,
// amqp://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2/VHOST?QUERY, into one URL per
// node, with the same user, password, virtual host and query. A URL with one
// host gives one node. Each address of a list is checked (a host name or
// IPv4 address and a port in 1..65535, which net/url needs to parse the
// list; IPv6 literals only as the single host), and an error names the bad
// address, never the password.
func parseNodes(rawURL string) ([]node, error) {
	password := urlPassword(rawURL)
	prefix, hostList, rest, ok := splitHosts(rawURL)
	hosts := []string{hostList}
	if ok && strings.Contains(hostList, ",") {
		hosts = strings.Split(hostList, ",")
	} else {
		prefix, rest = "", "" // one host: the URL as it is
	}
	var nodes []node
	for i, h := range hosts {
		one := rawURL
		if len(hosts) > 1 {
			if err := checkListedAddr(h); err != nil {
				return nil, fmt.Errorf("rabbitmq: URL %s: address %d of the host list, %q: %w", redactList(rawURL), i+1, h, err)
			}
			one = prefix + h + rest
		}
		u, err := url.Parse(one)
		if err != nil {
			// url's error quotes the whole URL: leave it out.
			return nil, fmt.Errorf("rabbitmq: URL %s does not parse", redactList(rawURL))
		}
		if u.Opaque != "" {
			// "amqp:USER:PASS@HOST" has no host for amqp091, which would
			// connect to its default, guest@localhost:5672, instead.
			return nil, fmt.Errorf("rabbitmq: URL %s is opaque; want %s://USER:PASSWORD@HOST:PORT/VHOST", redact.URL(rawURL), u.Scheme)
		}
		uri, err := amqp.ParseURI(one)
		if err != nil {
			if len(hosts) > 1 {
				return nil, fmt.Errorf("rabbitmq: URL %s: address %d of the host list, %q: %w", redactList(rawURL), i+1, h, redact.Err(err, password))
			}
			return nil, fmt.Errorf("rabbitmq: URL %s: %w", redact.URL(rawURL), redact.Err(err, password))
		}
		nodes = append(nodes, node{url: one, addr: net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))})
	}
	return nodes, nil
}

// splitHosts cuts rawURL into the part up to the host list
// ("scheme://userinfo@"), the host list and the rest ("/vhost?query"), or
// reports false when it has no "scheme://".
func splitHosts(rawURL string) (prefix, hosts, rest string, ok bool) {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return "", "", "", false
	}
	start := i + len("://")
	end := len(rawURL)
	if j := strings.IndexAny(rawURL[start:], "/?#"); j >= 0 {
		end = start + j
	}
	authority := rawURL[start:end]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		start += at + 1
	}
	return rawURL[:start], rawURL[start:end], rawURL[end:], true
}

// redactList is redact.URL for a URL with a host list, which net/url may
// not parse (it checks the text after the last ':' as a port).
func redactList(rawURL string) string {
	prefix, hosts, rest, ok := splitHosts(rawURL)
	if !ok {
		return redact.URL(rawURL)
	}
	first, _, _ := strings.Cut(hosts, ",")
	r := redact.URL(prefix + first + rest)
	return strings.Replace(r, first, hosts, 1)
}

// checkListedAddr checks one HOST[:PORT] of a host list.
func checkListedAddr(h string) error {
	if h == "" {
		return fmt.Errorf("empty address")
	}
	if strings.ContainsAny(h, "[]") {
		return fmt.Errorf("IPv6 literals are not supported in a host list")
	}
	host, port, found := strings.Cut(h, ":")
	if host == "" {
		return fmt.Errorf("no host")
	}
	if strings.Contains(port, ":") {
		return fmt.Errorf("more than one ':'")
	}
	if !found {
		return fmt.Errorf("no port (every address of a host list needs one)")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", port)
	}
	return nil
}

// addrList returns the nodes' host:port joined with ",", for messages.
func addrList(nodes []node) string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	return strings.Join(addrs, ",")
}
