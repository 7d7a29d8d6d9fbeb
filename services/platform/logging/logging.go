// Package logging builds the services' structured JSON logger.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON slog logger at level ("debug", "info", "warn", "error").
func New(w io.Writer, level, service string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("service", service)
}

// CheckLevel validates a level name for configuration.
func CheckLevel(v string) error {
	switch strings.ToLower(v) {
	case "debug", "info", "warn", "error":
		return nil
	}
	return errLevel
}

type levelError struct{}

func (levelError) Error() string { return "must be one of debug, info, warn, error" }

var errLevel = levelError{}
