// Package events is the contract between the example services: the typed
// topics they publish and subscribe to, the payload of each, and the names of
// the consumer groups that read them.
//
// A service imports events rather than another service, as microservices
// share a schema rather than code. Every topic is reached through a
// Namespace, so that several deployments (or test runs) can share one broker
// without seeing each other's events; the zero Namespace is the default and
// adds no prefix.
package events
