package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Query parses r's query string and checks it against the parameters the
// endpoint knows: a parameter given more than once, an unknown one or a
// query that does not parse is a 400 *RequestError naming each problem
// (names cut short), rather than a silently ignored or first-wins value.
func Query(r *http.Request, known ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, BadRequest("query does not parse: give name=value pairs, URL-encoded")
	}
	var errs []error
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range names {
		switch {
		case !slices.Contains(known, k):
			want := "none"
			if len(known) > 0 {
				want = strings.Join(known, ", ")
			}
			errs = append(errs, fmt.Errorf("unknown query parameter %s (want %s)", Quote(k), want))
		case len(q[k]) > 1:
			errs = append(errs, fmt.Errorf("query parameter %s is given %d times; give it once", Quote(k), len(q[k])))
		}
		if len(errs) >= 5 {
			break
		}
	}
	if len(errs) > 0 {
		return nil, &RequestError{Status: http.StatusBadRequest, Err: errors.Join(errs...)}
	}
	return q, nil
}
