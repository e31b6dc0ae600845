package pubsub

import "fmt"

// MaxNameLength is the longest topic or group name, in bytes.
const MaxNameLength = 200

// ValidateTopic returns nil if name is a valid topic name: 1 to MaxNameLength
// bytes of ASCII letters, digits, '.', '_' and '-'. Otherwise it returns an
// error wrapping ErrInvalidTopic that says what is wrong.
func ValidateTopic(name string) error { return validateName(name, ErrInvalidTopic) }

// ValidateGroup is ValidateTopic for consumer group names; its errors wrap
// ErrInvalidGroup.
func ValidateGroup(name string) error { return validateName(name, ErrInvalidGroup) }

func validateName(name string, kind error) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", kind)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: %d bytes, more than %d", kind, len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q at byte %d (allowed: letters, digits, '.', '_', '-')", kind, name, c, i)
		}
	}
	return nil
}
