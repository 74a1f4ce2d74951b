// Package logging writes the CPI's structured log to stderr, which the
// director copies into the task's CPI log. Secrets never reach it: values
// under secret-looking keys are replaced, and passwords in URLs are masked.
package logging

import (
	"io"
	"log/slog"
	"net/url"
	"os"
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
	if a.Value.Kind() == slog.KindString {
		return slog.String(a.Key, MaskURLPassword(a.Value.String()))
	}
	return a
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

// MaskURLPassword hides the password of URLs such as
// https://mbus:PASSWORD@host:6868 wherever they appear in s.
func MaskURLPassword(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	fields := strings.Fields(s)
	for i, f := range fields {
		trimmed := strings.Trim(f, `"',;()[]{}`)
		u, err := url.Parse(trimmed)
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			fields[i] = strings.Replace(f, trimmed, strings.Replace(u.String(), "REDACTED", Redacted, 1), 1)
		}
	}
	return strings.Join(fields, " ")
}
