// Package httpx holds the HTTP plumbing the example services share: serving
// a handler until a context ends, and JSON requests and responses with the
// status codes an API client expects.
package httpx
