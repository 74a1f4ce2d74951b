package cpierr

import (
	"errors"
	"fmt"
	"testing"
)

func TestWrap(t *testing.T) {
	cases := []struct {
		err   error
		kind  string
		retry bool
	}{
		{errors.New("boom"), TypeCloudError, false},
		{fmt.Errorf("pool: %w", ErrNoSpace), TypeNoDiskSpace, false},
		{fmt.Errorf("resize: %w", ErrNotSupported), TypeNotSupported, false},
		{VMNotFound("vm-1"), TypeVMNotFound, false},
		{New(TypeVMCreationFailed, nil, "x").Retryable(), TypeVMCreationFailed, true},
	}
	for _, tc := range cases {
		got := Wrap(tc.err, "doing %s", "it")
		var typed *Error
		if !errors.As(got, &typed) || typed.Type() != tc.kind || typed.CanRetry() != tc.retry {
			t.Errorf("Wrap(%v) = %v (%s, retry %v); want %s retry %v", tc.err, got, TypeOf(got), typed.CanRetry(), tc.kind, tc.retry)
		}
		if got.Error() != "doing it: "+tc.err.Error() {
			t.Errorf("message %q lost the cause", got.Error())
		}
	}
	if Wrap(nil, "x") != nil {
		t.Error("Wrap(nil) != nil")
	}
}

func TestMessagesSayTheirContextOnce(t *testing.T) {
	backend := errors.New("detaching disk 'd' from VM 'v': the guest did not release it")
	err := Wrap(New(TypeCloudError, backend, "detaching disk 'd' from VM 'v'"), "detaching disk 'd' from VM 'v'")
	if got := err.Error(); got != backend.Error() {
		t.Fatalf("message repeats its context: %q", got)
	}
	other := Wrap(errors.New("no such file"), "reading '/x'")
	if got := other.Error(); got != "reading '/x': no such file" {
		t.Fatalf("a cause without the context lost it: %q", got)
	}
}
