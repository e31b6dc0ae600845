// Package httpx holds the HTTP plumbing the example services share: serving
// a handler until a context ends, with the caller's trace continued into the
// request's context, and JSON requests and responses with the status codes
// an API client expects.
package httpx
