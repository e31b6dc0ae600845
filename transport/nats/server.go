package nats

import (
	"strconv"
	"strings"
)

// serverVersion is a NATS Server version, major.minor.patch; parts it
// cannot read are -1.
func serverVersion(version string) (major, minor, patch int) {
	parts := strings.SplitN(version, ".", 3)
	v := [3]int{-1, -1, -1}
	for i, p := range parts {
		p, _, _ = strings.Cut(p, "-") // 2.11.0-RC.1
		if n, err := strconv.Atoi(p); err == nil {
			v[i] = n
		}
	}
	return v[0], v[1], v[2]
}

// redeliverySafe reports whether the server delivers a redelivery (after
// a negative acknowledgement, or AckWait) that becomes due when the only
// pull request waiting has just expired. NATS Server before 2.10.16 takes
// the message off its redelivery queue, finds no request to send it to,
// and drops it: it comes back only after AckWait (and, before 2.10.14, the
// consumer steps back one message, which it delivers again as new,
// delivery count 1). Fixed upstream by "Fixed delivery counts on failed
// deliveries" (nats-server 8272e749d, in 2.10.16) and #5305 (c3416ca0a).
// An unknown version is assumed current.
func redeliverySafe(version string) bool {
	ma, mi, pa := serverVersion(version)
	switch {
	case ma < 0 || mi < 0:
		return true
	case ma != 2:
		return ma > 2
	case mi != 10:
		return mi > 10
	default:
		return pa < 0 || pa >= 16
	}
}
