// Package redact keeps credentials out of logs and errors.
package redact

import (
	"net/url"
	"strings"
)

// URL returns rawURL with any password replaced by "xxxxx". A URL that does
// not parse, or has an '@' outside a parsed user-info part, is reduced to its
// scheme, since its password cannot be found reliably.
func URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.Index(rawURL, "://"); i > 0 && !strings.ContainsAny(rawURL[:i], "@:/") {
			return rawURL[:i] + "://[unparsable URL]"
		}
		return "[unparsable URL]"
	}
	if u.User == nil && strings.Contains(rawURL, "@") {
		// Opaque or odd URLs ("user:pass@host" parses as scheme "user"):
		// the '@' may still follow a password.
		return u.Scheme + ":[redacted]"
	}
	return u.Redacted()
}

// Err returns err, or, when err's text contains password, an error whose
// text has it replaced by "xxxxx" and that still wraps err for errors.Is and
// errors.As. It is for errors of libraries that echo a URL back.
func Err(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redacted{text: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

type redacted struct {
	text string
	err  error
}

func (r *redacted) Error() string { return r.text }
func (r *redacted) Unwrap() error { return r.err }
