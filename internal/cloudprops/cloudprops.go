// Package cloudprops decodes cloud_properties strictly: unknown keys and
// wrong types are errors that name the key, because a silently ignored
// typo (say "memroy") gives an operator a VM they did not ask for.
package cloudprops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Source is what bosh-cpi-go hands us for cloud_properties.
type Source interface {
	As(any) error
}

// Decode reads src into out (a pointer to a struct with json tags),
// rejecting keys out does not declare. what names the object for messages
// ("VM cloud_properties").
func Decode(src Source, out any, what string) error {
	var raw json.RawMessage
	if m, ok := src.(json.Marshaler); ok {
		// An absent cloud_properties arrives as empty JSON: that is "none".
		b, err := m.MarshalJSON()
		if err != nil {
			return fmt.Errorf("%s: not a JSON object: %w", what, err)
		}
		raw = b
	} else if src != nil {
		if err := src.As(&raw); err != nil {
			return fmt.Errorf("%s: not a JSON object: %w", what, err)
		}
	}
	return DecodeJSON(raw, out, what)
}

// DecodeJSON is Decode for raw JSON; null or empty input leaves out as is.
func DecodeJSON(raw []byte, out any, what string) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%s: key '%s' must be %s, got %s", what, typeErr.Field, typeErr.Type, typeErr.Value)
		}
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			return fmt.Errorf("%s: unknown key %s", what, strings.TrimPrefix(msg, "json: unknown field "))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
