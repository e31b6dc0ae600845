package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ProblemContentType is the content type of every error answer.
const ProblemContentType = "application/problem+json"

// Problem is the JSON body of every error answer of the example services:
// RFC 9457 problem details, with Type always "about:blank" (the status says
// what kind of problem it is) and Title the status text.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail says what is wrong with this request, in words fit for an API
	// client. User input appears in it only as a short quoted prefix.
	Detail string `json:"detail,omitempty"`
	// Errors lists each problem when a request has several (an extension
	// member); Detail then joins them with "; ".
	Errors []string `json:"errors,omitempty"`
}

// WriteProblem writes p with its Status, filling in Type and Title.
func WriteProblem(w http.ResponseWriter, p Problem) {
	p.Fill()
	WriteProblemDocument(w, p.Status, p)
}

// WriteProblemDocument writes doc, a problem document with extension
// members (a struct that embeds a Problem filled with Fill, and adds its
// own fields), with status and the problem content type.
func WriteProblemDocument(w http.ResponseWriter, status int, doc any) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	writeJSON(w, status, doc)
}

// Fill fills in Type and Title and cuts Detail and Errors to their bounds.
func (p *Problem) Fill() {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if len(p.Errors) < 2 {
		p.Errors = nil
	}
	// A last bound, whatever a message quoted: no answer echoes a request.
	p.Detail = cut(p.Detail, maxDetail)
	for i := range p.Errors {
		p.Errors[i] = cut(p.Errors[i], maxDetail)
	}
	if len(p.Errors) > maxErrors {
		p.Errors = append(p.Errors[:maxErrors], fmt.Sprintf("... and %d more", len(p.Errors)-maxErrors))
	}
}

// Bounds of a Problem: Detail and each of Errors are cut to maxDetail
// bytes, Errors to maxErrors entries.
const (
	maxDetail = 1024
	maxErrors = 20
)

// cut returns s cut to at most n bytes (on a rune boundary), marked with
// "..." when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= 3
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// detail is err's text with joined errors separated by "; ".
func detail(err error) string {
	if l := list(err); len(l) > 1 {
		return strings.Join(l, "; ")
	}
	return err.Error()
}

// list returns the errors joined in err (through wrapping), or err alone.
func list(err error) []string {
	for e := err; e != nil; {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			var out []string
			for _, x := range j.Unwrap() {
				out = append(out, x.Error())
			}
			return out
		}
		e = errors.Unwrap(e)
	}
	return []string{err.Error()}
}

// maxQuoted is how many bytes of user input Quote keeps.
const maxQuoted = 48

// Quote returns s quoted for an error message (%q), cut to a short prefix
// followed by "..." when it is long, so that no answer or log line echoes
// user input unbounded.
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not in the middle of a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q", s[:cut]+"...")
}

// clip cuts a token (an HTTP method) to a short prefix.
func clip(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}

// Problems returns h with every error answer written by net/http itself
// (the mux's 404 and 405, http.Error's text/plain answers) turned into a
// Problem: a 405 keeps its Allow header and lists the allowed methods; a 404
// names the method and a short prefix of the path. Answers h writes as
// JSON pass through untouched. Serve applies it.
func Problems(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &problemWriter{ResponseWriter: w, r: r}
		h.ServeHTTP(pw, r)
		pw.finish()
	})
}

// problemWriter catches a text/plain error answer and writes a Problem in
// its place once the handler returns.
type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	status  int             // the caught error's status; 0: passing through
	text    strings.Builder // what the handler wrote of it (bounded)
	written bool
}

func (w *problemWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.written = true
	if code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *problemWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.status != 0 {
		if room := 512 - w.text.Len(); room > 0 {
			w.text.Write(b[:min(len(b), room)])
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for streamed answers.
func (w *problemWriter) Flush() {
	if w.status != 0 {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *problemWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *problemWriter) finish() {
	if w.status == 0 {
		return
	}
	var msg string
	switch w.status {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no such resource: %s %s", clip(w.r.Method), Quote(w.r.URL.Path))
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("method %s is not allowed here; allowed: %s", clip(w.r.Method), w.Header().Get("Allow"))
	default:
		msg = strings.TrimSpace(w.text.String())
	}
	w.Header().Del("Content-Length")
	WriteProblem(w.ResponseWriter, Problem{Status: w.status, Detail: msg})
}
