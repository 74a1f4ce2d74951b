// Package logging writes the CPI's structured log to stderr, which the
// director copies into the task's CPI log. Secrets never reach it: values
// under secret-looking keys are replaced, and passwords in URLs are masked,
// in strings, in errors' text, and at any depth of maps and structs.
package logging

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
)

// Redacted replaces a secret value.
const Redacted = "[redacted]"

var secretKeyParts = []string{"password", "secret", "private_key", "privatekey", "token", "credential", "settings", "user_data", "mbus", "env"}

// New returns a JSON logger on w. BOSH_LIBVIRT_CPI_LOG_LEVEL=debug adds
// debug lines.
func New(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("BOSH_LIBVIRT_CPI_LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: redact}))
}

func redact(_ []string, a slog.Attr) slog.Attr {
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, MaskURLPassword(a.Value.String()))
	case slog.KindAny:
		return slog.Any(a.Key, redactAny(a.Value.Any()))
	}
	return a
}

// redactAny masks what a value logged as it is (an error, a map, a struct)
// would show: an error's text is masked like a string; anything else is
// logged as its JSON, with values under secret-looking keys replaced at
// any depth and URL passwords masked.
func redactAny(v any) any {
	if err, ok := v.(error); ok {
		return MaskURLPassword(err.Error())
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return Redacted
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return Redacted
	}
	return redactJSON(generic)
}

func redactJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, inner := range v {
			if IsSecretKey(k) {
				v[k] = Redacted
			} else {
				v[k] = redactJSON(inner)
			}
		}
	case []any:
		for i, inner := range v {
			v[i] = redactJSON(inner)
		}
	case string:
		return MaskURLPassword(v)
	}
	return v
}

// IsSecretKey tells whether a log key names something secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, part := range secretKeyParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// urlPassword matches the user:password@ of a URL: a scheme, a user, then
// everything up to the token's last '@', so that a password holding an
// unescaped '@' or a URL the parser refuses (as in Go's "dial
// https://u:p@h:6868: connection refused") is masked whole.
var urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/]*:)\S*@`)

// MaskURLPassword hides the password of URLs such as
// https://mbus:PASSWORD@host:6868 wherever they appear in s.
func MaskURLPassword(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	return urlPassword.ReplaceAllString(s, "${1}"+Redacted+"@")
}
