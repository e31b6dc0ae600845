package auth

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Wildcard in a rule's field matches any value.
const Wildcard = "*"

// Rule allows User to do Action on Resource; each field is a name or
// Wildcard.
type Rule struct {
	User, Action, Resource string
	// Line is the rule's line in its file (1-based).
	Line int
}

func (r Rule) matches(user, action, resource string) bool {
	m := func(pat, v string) bool { return pat == Wildcard || pat == v }
	return m(r.User, user) && m(r.Action, action) && m(r.Resource, resource)
}

// Policy is a list of allow rules: a request is allowed when a rule matches
// it, denied otherwise. A Policy is immutable and safe for concurrent use.
type Policy struct {
	name  string
	rules []Rule
}

// Decide reports whether user may do action on resource, and why: the rule
// that allows it, or that none does.
func (p *Policy) Decide(user, action, resource string) (bool, string) {
	for _, r := range p.rules {
		if r.matches(user, action, resource) {
			return true, fmt.Sprintf("%s:%d allows %s %s %s", p.name, r.Line, r.User, r.Action, r.Resource)
		}
	}
	return false, fmt.Sprintf("no rule of %s allows %s to %s %s", p.name, user, action, resource)
}

// Rules returns the policy's rules in file order.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// ParsePolicy reads a policy from r, named name in reasons and errors (a
// file name, say). Each non-blank line that is not a comment ("#" to the
// end of the line) is a rule of three fields separated by spaces or tabs:
// user, action, resource, each a name or "*". Every malformed line is
// reported, with its number, in one error.
func ParsePolicy(name string, r io.Reader) (*Policy, error) {
	p := &Policy{name: name}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		switch len(f) {
		case 0:
			continue
		case 3:
			p.rules = append(p.rules, Rule{User: f[0], Action: f[1], Resource: f[2], Line: n})
		default:
			errs = append(errs, fmt.Errorf("%s:%d: %d fields, want 3: user action resource", name, n, len(f)))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: policy %w", err)
	}
	return p, nil
}

// LoadPolicy reads the policy file at path (see ParsePolicy).
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	return ParsePolicy(path, f)
}

//go:embed demo-policy.txt
var demoPolicy string

// DemoPolicy returns the demo's policy (demo-policy.txt in this package):
// ada may export and read transactions, bob may only read them, carol may
// do anything.
func DemoPolicy() *Policy {
	p, err := ParsePolicy("demo-policy.txt", strings.NewReader(demoPolicy))
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return p
}
