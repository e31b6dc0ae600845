package events

import (
	"fmt"
	"strings"
)

// MaxNamespaceBytes is the longest Namespace ParseNamespace accepts.
const MaxNamespaceBytes = 64

// ParseNamespace checks a namespace given by a user (PUBSUB_NAMESPACE) and
// returns it ready to prefix topic names: letters, digits and "._-", at
// most MaxNamespaceBytes, ending in a separator. A namespace that does not
// end in '.', '-' or '_' gets a '.' added, so that "staging" makes topics
// "staging.user.activity", never "staginguser.activity". Empty is the
// default namespace, which adds nothing.
func ParseNamespace(s string) (Namespace, error) {
	if s == "" {
		return "", nil
	}
	if len(s) > MaxNamespaceBytes {
		return "", fmt.Errorf("namespace is %d bytes, at most %d allowed", len(s), MaxNamespaceBytes)
	}
	for _, c := range s {
		if !(c == '.' || c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", fmt.Errorf("namespace %.40q: character %q not allowed (letters, digits and ._- only)", s, c)
		}
	}
	if !strings.ContainsAny(s[len(s)-1:], ".-_") {
		s += "."
	}
	return Namespace(s), nil
}
