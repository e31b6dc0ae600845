package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// DefaultMaxBodyBytes is the request body limit of DecodeJSON callers that
// set none: 64 KiB.
const DefaultMaxBodyBytes = 64 << 10

// WriteJSON writes v as the JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes an RFC 9457 problem document (Problem) with status
// and msg as its detail.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteProblem(w, Problem{Status: status, Detail: msg})
}

// RequestError is an error with the HTTP status it should be answered with.
type RequestError struct {
	Status int
	Err    error
}

// Error returns Err's text.
func (e *RequestError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *RequestError) Unwrap() error { return e.Err }

// BadRequest returns a *RequestError with status 400.
func BadRequest(format string, args ...any) error {
	return &RequestError{Status: http.StatusBadRequest, Err: fmt.Errorf(format, args...)}
}

// WriteRequestError answers err as a Problem: with its status if it is a
// *RequestError, 500 otherwise. The errors joined in err (errors.Join) are
// listed one by one in Problem.Errors.
func WriteRequestError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var re *RequestError
	if errors.As(err, &re) {
		status = re.Status
	}
	WriteProblem(w, Problem{Status: status, Detail: detail(err), Errors: list(err)})
}

// DecodeJSON reads r's body, at most limit bytes (DefaultMaxBodyBytes when
// limit <= 0), as one JSON object into v, rejecting unknown fields. Its
// errors are *RequestError: 413 for a body over the limit, 415 for a content
// type other than JSON, 400 for anything malformed, with a message that says
// what and where.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return &RequestError{Status: http.StatusUnsupportedMediaType, Err: fmt.Errorf("content type %s, want application/json", Quote(ct))}
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err, limit)
		}
		return BadRequest("body has more than one JSON value")
	}
	return nil
}

func isJSON(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	return ct == "application/json" || ct == "text/json"
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

func tooLarge(limit int64) error {
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("body is larger than %d bytes", limit)}
}

func decodeError(err error, limit int64) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return tooLarge(limit)
	case errors.Is(err, io.EOF):
		return BadRequest("body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("body is truncated JSON")
	case errors.As(err, &syntaxErr):
		return BadRequest("body is not valid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return BadRequest("body is a JSON %s, want a JSON object", typeErr.Value)
		}
		return BadRequest("field %q is a JSON %s, want a JSON %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
	default:
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return BadRequest("field %s is not allowed", Quote(strings.Trim(f, `"`)))
		}
		// Bad time formats and the like: encoding/json's text names the
		// problem.
		return BadRequest("bad request body: %v", err)
	}
}
