// Package redact keeps credentials out of logs and errors.
package redact

import (
	"net/url"
	"strings"
)

// URL returns rawURL with any password replaced by "xxxxx". A URL that does
// not parse is reduced to its scheme, since its password cannot be found
// reliably.
func URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.Index(rawURL, "://"); i > 0 && !strings.ContainsAny(rawURL[:i], "@:/") {
			return rawURL[:i] + "://[unparsable URL]"
		}
		return "[unparsable URL]"
	}
	return u.Redacted()
}

// Error returns the text of err with every occurrence of password replaced by
// "xxxxx"; it is for errors of libraries that echo a URL back.
func Error(err error, password string) string {
	if err == nil {
		return ""
	}
	if password == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), password, "xxxxx")
}
