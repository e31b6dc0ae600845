package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Activity types a UserActivity may have.
const (
	SignedUp    = "signed_up"
	LoggedIn    = "logged_in"
	LoggedOut   = "logged_out"
	ViewedPage  = "viewed_page"
	AddedToCart = "added_to_cart"
	Purchased   = "purchased"
)

// ActivityTypes lists the valid UserActivity types.
var ActivityTypes = []string{SignedUp, LoggedIn, LoggedOut, ViewedPage, AddedToCart, Purchased}

// SimulateFailureAttribute is a demo switch: a UserActivity whose attributes
// map it to a consumer group name makes that group's handler crash on it every
// time, so the event is retried and ends in the group's dead letters.
const SimulateFailureAttribute = "simulate_failure"

// Limits of a valid UserActivity.
const (
	MaxUserIDLength   = 128
	MaxAttributes     = 32
	MaxAttributeBytes = 1024
)

// UserActivity is something a user did, published on user.activity keyed by
// UserID.
type UserActivity struct {
	UserID     string            `json:"user_id"`
	Type       string            `json:"type"`
	At         time.Time         `json:"at"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Validate reports every problem with a, joined, in words fit for an API
// client.
func (a UserActivity) Validate() error {
	var errs []error
	switch {
	case strings.TrimSpace(a.UserID) == "":
		errs = append(errs, errors.New("user_id is required"))
	case len(a.UserID) > MaxUserIDLength:
		errs = append(errs, fmt.Errorf("user_id is %d bytes, at most %d allowed", len(a.UserID), MaxUserIDLength))
	}
	switch {
	case a.Type == "":
		errs = append(errs, fmt.Errorf("type is required (one of %s)", strings.Join(ActivityTypes, ", ")))
	case !slices.Contains(ActivityTypes, a.Type):
		errs = append(errs, fmt.Errorf("type %.40q is unknown (want one of %s)", a.Type, strings.Join(ActivityTypes, ", ")))
	}
	if !a.At.IsZero() && a.At.After(time.Now().Add(24*time.Hour)) {
		errs = append(errs, fmt.Errorf("at %s is more than a day in the future", a.At.Format(time.RFC3339)))
	}
	if len(a.Attributes) > MaxAttributes {
		errs = append(errs, fmt.Errorf("%d attributes, at most %d allowed", len(a.Attributes), MaxAttributes))
	}
	for k, v := range a.Attributes {
		if k == "" || len(k)+len(v) > MaxAttributeBytes {
			errs = append(errs, fmt.Errorf("attribute %.40q: key must be non-empty and key plus value at most %d bytes", k, MaxAttributeBytes))
		}
	}
	return errors.Join(errs...)
}

// SimulatesFailureIn reports whether a asks the handler of group to crash
// (see SimulateFailureAttribute).
func (a UserActivity) SimulatesFailureIn(group string) bool {
	return a.Attributes[SimulateFailureAttribute] == group
}
