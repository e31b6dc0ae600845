package httpx_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// problem serves req on h and decodes the RFC 9457 answer.
func problem(t *testing.T, h http.Handler, req *http.Request) (*httptest.ResponseRecorder, httpx.Problem) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "%d %q", rec.Code, rec.Body.String())
	return rec, p
}

// TestWriteError: every error answer is an RFC 9457 problem document, and
// joined errors are listed one by one.
func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.WriteRequestError(rec, httpx.BadRequest("%w", errors.Join(errors.New("StartDate is required"), errors.New("EndDate is required"))))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, httpx.Problem{Type: "about:blank", Title: "Bad Request", Status: 400,
		Detail: "StartDate is required; EndDate is required", Errors: []string{"StartDate is required", "EndDate is required"}}, p)
}

// TestProblemsMux: the 404 and 405 that net/http's mux writes itself come
// out as problem documents too, 405 with its Allow header, and the path is
// never echoed beyond a short prefix.
func TestProblemsMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/x", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) })
	mux.HandleFunc("POST /api/x", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "teapot", http.StatusTeapot) })
	h := httpx.Problems(mux)

	rec, p := problem(t, h, httptest.NewRequest(http.MethodDelete, "/api/x", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "GET, HEAD, POST", rec.Header().Get("Allow"))
	assert.Equal(t, httpx.Problem{Type: "about:blank", Title: "Method Not Allowed", Status: 405, Detail: "method DELETE is not allowed here; allowed: GET, HEAD, POST"}, p)

	long := "/api/" + strings.Repeat("y", 100_000)
	rec, p = problem(t, h, httptest.NewRequest(http.MethodGet, long, nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "Not Found", p.Title)
	assert.Less(t, rec.Body.Len(), 400, "the path is not echoed whole")
	assert.Contains(t, p.Detail, `no such resource: GET "/api/yyyy`)

	rec, p = problem(t, h, httptest.NewRequest(http.MethodPost, "/api/x", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.Equal(t, "teapot", p.Detail, "http.Error's text becomes the detail")

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/x", nil))
	assert.Equal(t, "x", rec.Body.String(), "success passes through")
}

// TestQuery: duplicate and unknown query parameters are refused, naming
// them (bounded).
func TestQuery(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/?StartDate=a&StartDate=b&Color=red&"+strings.Repeat("z", 5000)+"=1&EndDate=c", nil)
	_, err := httpx.Query(r, "StartDate", "EndDate")
	var re *httpx.RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusBadRequest, re.Status)
	assert.Contains(t, err.Error(), `query parameter "StartDate" is given 2 times; give it once`)
	assert.Contains(t, err.Error(), `unknown query parameter "Color" (want StartDate, EndDate)`)
	assert.Less(t, len(err.Error()), 600)

	q, err := httpx.Query(httptest.NewRequest(http.MethodGet, "/?StartDate=a&EndDate=b", nil), "StartDate", "EndDate")
	require.NoError(t, err)
	assert.Equal(t, "a", q.Get("StartDate"))
	_, err = httpx.Query(httptest.NewRequest(http.MethodGet, "/?StartDate=%zz", nil), "StartDate")
	assert.ErrorContains(t, err, "query does not parse")
}

// TestClip: user input quoted in errors is cut to a short prefix.
func TestClip(t *testing.T) {
	assert.Equal(t, `"abc"`, httpx.Quote("abc"))
	q := httpx.Quote(strings.Repeat("é", 1000))
	assert.LessOrEqual(t, len(q), 80)
	assert.True(t, strings.HasSuffix(q, `…"`) || strings.HasSuffix(q, `..."`), q)
}

// TestProblemBounded: whatever a message quotes, a problem's detail and
// errors stay bounded.
func TestProblemBounded(t *testing.T) {
	rec := httptest.NewRecorder()
	var errs []error
	for range 50 {
		errs = append(errs, errors.New(strings.Repeat("v", 100_000)))
	}
	httpx.WriteRequestError(rec, httpx.BadRequest("%w", errors.Join(errs...)))
	assert.Less(t, rec.Body.Len(), 30_000)
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Len(t, p.Errors, 21)
	assert.Equal(t, "... and 30 more", p.Errors[20])
	assert.LessOrEqual(t, len(p.Detail), 1024)
}
