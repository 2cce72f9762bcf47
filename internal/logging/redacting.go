package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacting returns h behind the redaction of NewLogger's handler: every
// message, attribute key and value, at any depth of groups, goes through
// RedactKeys before h sees it. It is for loggers that a library user
// supplies, whose handlers keygate does not control.
func Redacting(h slog.Handler) slog.Handler { return redacting{h} }

type redacting struct{ h slog.Handler }

func (r redacting) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redacting) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, RedactKeys(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return redacting{r.h.WithAttrs(red)}
}

func (r redacting) WithGroup(name string) slog.Handler {
	return redacting{r.h.WithGroup(RedactKeys(name))}
}

// redactAttr is a with its key and value redacted, groups walked.
func redactAttr(a slog.Attr) slog.Attr {
	a.Key = RedactKeys(a.Key)
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		a.Value = slog.GroupValue(red...)
		return a
	}
	if v.Kind() == slog.KindAny {
		// A text handler prints what fmt prints, which JSON may not show
		// ([]byte, unexported fields): when only fmt shows a key, log the
		// redacted text instead.
		text := fmt.Sprintf("%+v", v.Any())
		if b, ok := v.Any().([]byte); ok {
			text = string(b)
		}
		if r := RedactKeys(text); r != text {
			if js, err := json.Marshal(v.Any()); err != nil || RedactKeys(string(js)) == string(js) {
				a.Value = slog.StringValue(r)
				return a
			}
		}
	}
	a.Value = redactValue(v)
	return a
}
