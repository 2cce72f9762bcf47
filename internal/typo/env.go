package typo

import (
	"log/slog"
	"slices"
	"strings"
)

// A Mistyped variable is set in the environment, but its program reads no
// variable of its name: the one it is near is Meant.
type Mistyped struct{ Name, Meant string }

func (m Mistyped) String() string {
	return m.Name + " is set, but no variable of that name is read: did you mean " + m.Meant + "?"
}

// Variables returns the variables of environ (as os.Environ gives it) that
// load does not read but are near a name it does (Meant): KEY_CACHE_TL for
// KEY_CACHE_TTL. load is called once with every variable unset, to learn
// the names it reads. Only names are looked at, never values: they may be
// secrets. The result is sorted by name.
func Variables[T any](environ []string, load func(getenv func(string) string) (T, error)) []Mistyped {
	var known []string
	load(func(name string) string {
		known = append(known, name)
		return ""
	})
	var out []Mistyped
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if meant, ok := Meant(name, known); ok {
			out = append(out, Mistyped{Name: name, Meant: meant})
		}
	}
	slices.SortFunc(out, func(a, b Mistyped) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b Mistyped) bool { return a.Name == b.Name })
}

// LogVariables logs at WARNING each of Variables(environ, load), naming the
// variable and the name meant, as a program does at start.
func LogVariables[T any](log *slog.Logger, environ []string, load func(getenv func(string) string) (T, error)) {
	for _, m := range Variables(environ, load) {
		log.Warn("configuration: "+m.String(), slog.String("variable", m.Name), slog.String("meant", m.Meant))
	}
}
