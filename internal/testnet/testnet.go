// Package testnet holds network endpoints that tests point clients at to
// see how they fail: a Silent listener accepts connections and never says
// a word, so that a client's handshake (AMQP, TLS, gRPC) waits out its
// timeout instead of being refused.
package testnet

import (
	"net"
	"sync"
)

// Silent is a TCP listener on 127.0.0.1 that accepts every connection and
// holds it open without reading or writing, until Close. Its methods are
// safe for concurrent use.
type Silent struct {
	ln       net.Listener
	accepted chan struct{} // closed when the accept loop ends

	mu   sync.Mutex
	held []net.Conn
}

// NewSilent starts a Silent listener on a free port of 127.0.0.1.
func NewSilent() (*Silent, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Silent{ln: ln, accepted: make(chan struct{})}
	go s.accept()
	return s, nil
}

func (s *Silent) accept() {
	defer close(s.accepted)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.held = append(s.held, c)
		s.mu.Unlock()
	}
}

// Addr returns the listener's host:port.
func (s *Silent) Addr() string { return s.ln.Addr().String() }

// Close stops accepting and closes every connection held. It returns the
// listener's Close error; calling it again returns an error and does no
// harm.
func (s *Silent) Close() error {
	err := s.ln.Close()
	<-s.accepted
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		_ = c.Close()
	}
	s.held = nil
	return err
}
