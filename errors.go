package duct

import (
	"errors"
	"fmt"
)

// Sentinel errors. Components wrap them with the operation that failed
// ("deploy \"hello\": build: %w"); the API maps them to HTTP statuses in one
// place.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalid      = errors.New("invalid")
	ErrConflict     = errors.New("conflict")
	ErrTooLarge     = errors.New("too large")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrOverloaded   = errors.New("overloaded")
	ErrTimeout      = errors.New("timed out")
	ErrCrashed      = errors.New("instance crashed")
	ErrInitFailed   = errors.New("function failed to initialise")
	ErrBuildFailed  = errors.New("build failed")
	ErrUnavailable  = errors.New("unavailable")
	ErrShuttingDown = errors.New("shutting down")
	ErrMemoryLimit  = errors.New("memory limit exceeded")
)

// InvalidError reports bad input: which field, and why. It matches
// ErrInvalid with errors.Is.
type InvalidError struct {
	Field  string // e.g. "name", "duct.yaml: timeout"
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid: " + e.Reason
	}
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns an *InvalidError for field with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// BuildError is a failed build: the build log travels with it so the user
// sees why. It matches ErrBuildFailed with errors.Is.
type BuildError struct {
	Reason string
	Log    string
}

func (e *BuildError) Error() string { return "build failed: " + e.Reason }

func (e *BuildError) Is(target error) bool { return target == ErrBuildFailed }
