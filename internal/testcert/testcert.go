// Package testcert makes certificates for tests that run TLS servers: a
// certificate authority of the test's own, and server certificates for
// 127.0.0.1 signed by it, each also written as PEM files into a directory
// so that a broker's config file or a client URL (tls_ca=, cacertfile=) can
// name them. Keys are ECDSA P-256; certificates are valid from an hour ago
// to an hour from now. Nothing here is fit for anything but tests.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// CA is a certificate authority made for one test. Its methods are safe
// for concurrent use.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// File is the path of Cert's PEM file: what clients are told to trust.
	File string

	name   string
	key    *ecdsa.PrivateKey
	serial atomic.Int64 // the last serial number issued
}

// Server is a server certificate issued by a CA, and its key.
type Server struct {
	// CertFile and KeyFile are the paths of the PEM files of the
	// certificate and of its private key ("EC PRIVATE KEY").
	CertFile, KeyFile string
	// Certificate is the same pair, for a tls.Config of a server in the
	// test process.
	Certificate tls.Certificate
}

// NewCA makes a CA whose subject's common name is name, and writes its
// certificate to dir/name.pem.
func NewCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA %s: %w", name, err)
	}
	file := filepath.Join(dir, name+".pem")
	if err := writePEM(file, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, File: file, name: name, key: key}
	ca.serial.Store(1)
	return ca, nil
}

// Pool returns a pool holding only the CA's certificate, for
// tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// IssueServer makes a server certificate for the IP address 127.0.0.1 (also
// its common name) signed by ca, and writes it and its key into dir, named
// after the CA and the serial number, so that several servers may share dir.
func (ca *CA) IssueServer(dir string) (Server, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Server{}, fmt.Errorf("testcert: %w", err)
	}
	serial := ca.serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Server{}, fmt.Errorf("testcert: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Server{}, fmt.Errorf("testcert: server key: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-server-%d", ca.name, serial))
	s := Server{CertFile: base + ".pem", KeyFile: base + "-key.pem"}
	if err := writePEM(s.CertFile, "CERTIFICATE", der); err != nil {
		return Server{}, err
	}
	if err := writePEM(s.KeyFile, "EC PRIVATE KEY", keyDER); err != nil {
		return Server{}, err
	}
	s.Certificate, err = tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return Server{}, fmt.Errorf("testcert: %w", err)
	}
	return s, nil
}

// writePEM writes der as one PEM block of type typ to file, readable by the
// user only.
func writePEM(file, typ string, der []byte) error {
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("testcert: %w", err)
	}
	return nil
}
