// Package cpierr holds the error types a BOSH director understands.
//
// Every error that leaves the CPI method layer is one of these: the director
// maps the Type() string to Bosh::Clouds::* and decides on retries from it.
package cpierr

import (
	"errors"
	"fmt"
	"strings"
)

// Type names as the director knows them.
const (
	TypeCpiError         = "Bosh::Clouds::CpiError"
	TypeNotSupported     = "Bosh::Clouds::NotSupported"
	TypeNotImplemented   = "Bosh::Clouds::NotImplemented"
	TypeCloudError       = "Bosh::Clouds::CloudError"
	TypeVMNotFound       = "Bosh::Clouds::VMNotFound"
	TypeNetworkNotFound  = "Bosh::Clouds::NetworkNotFound"
	TypeNoDiskSpace      = "Bosh::Clouds::NoDiskSpace"
	TypeDiskNotAttached  = "Bosh::Clouds::DiskNotAttached"
	TypeDiskNotFound     = "Bosh::Clouds::DiskNotFound"
	TypeVMCreationFailed = "Bosh::Clouds::VMCreationFailed"
)

// Error is a typed CPI error. It satisfies bosh-cpi-go's rpc.CloudError and
// rpc.RetryableError so the dispatcher reports its type and retry flag.
type Error struct {
	kind    string
	retry   bool
	message string
	cause   error
}

// Error is the message, then the cause's. When the cause already starts
// with the same words (the CPI layer and a backend both say what they were
// doing), they are said once.
func (e *Error) Error() string {
	if e.cause == nil {
		return e.message
	}
	cause := e.cause.Error()
	if strings.HasPrefix(cause, e.message) {
		return cause
	}
	return e.message + ": " + cause
}

// Type is the director's error class.
func (e *Error) Type() string { return e.kind }

// CanRetry is the ok_to_retry flag.
func (e *Error) CanRetry() bool { return e.retry }

func (e *Error) Unwrap() error { return e.cause }

// New makes an error of the given type; cause may be nil.
func New(kind string, cause error, format string, args ...any) *Error {
	return &Error{kind: kind, message: fmt.Sprintf(format, args...), cause: cause}
}

// Retryable marks the error ok_to_retry.
func (e *Error) Retryable() *Error {
	e.retry = true
	return e
}

func VMNotFound(cid string) *Error {
	return New(TypeVMNotFound, nil, "VM '%s' not found", cid)
}

func DiskNotFound(cid string) *Error {
	return New(TypeDiskNotFound, nil, "disk '%s' not found", cid)
}

func DiskNotAttached(vmCID, diskCID string) *Error {
	return New(TypeDiskNotAttached, nil, "disk '%s' is not attached to VM '%s'", diskCID, vmCID)
}

func NotSupported(format string, args ...any) *Error {
	return New(TypeNotSupported, nil, format, args...)
}

func NotImplemented(format string, args ...any) *Error {
	return New(TypeNotImplemented, nil, format, args...)
}

// Sentinel causes that backends return; the CPI layer turns them into typed
// errors with the object's CID in the message.
var (
	ErrNotFound     = errors.New("not found")
	ErrNoSpace      = errors.New("no space left in storage pool")
	ErrNotAttached  = errors.New("not attached")
	ErrInUse        = errors.New("in use")
	ErrUnreachable  = errors.New("daemon unreachable")
	ErrNotSupported = errors.New("not supported")
	// ErrImpossible: the runtime can never do this as asked (more vCPUs
	// than the machine type takes, more memory than the host has), so a
	// retry cannot help.
	ErrImpossible = errors.New("impossible on this host")
)

// IsNotFound tells whether err means the object is not there.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Wrap keeps a typed error's type and prefixes what was being done; any other
// error becomes a CloudError (or NoDiskSpace / NotFound kinds when the cause
// says so). It never loses the original message.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var typed *Error
	if errors.As(err, &typed) {
		return &Error{kind: typed.kind, retry: typed.retry, message: msg, cause: err}
	}
	kind := TypeCloudError
	switch {
	case errors.Is(err, ErrNoSpace):
		kind = TypeNoDiskSpace
	case errors.Is(err, ErrNotSupported):
		kind = TypeNotSupported
	}
	return &Error{kind: kind, message: msg, cause: err}
}

// TypeOf reports the BOSH type of err (CloudError for untyped errors).
func TypeOf(err error) string {
	var typed *Error
	if errors.As(err, &typed) {
		return typed.kind
	}
	return TypeCloudError
}
