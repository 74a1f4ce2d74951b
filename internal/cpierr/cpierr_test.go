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
