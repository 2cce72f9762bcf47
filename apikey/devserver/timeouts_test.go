package devserver

import (
	"testing"
	"time"
)

// TestLoadTimeouts: the defaults, the variables over them, and the write
// timeout outlasting the request timeout (Cloud Run's 300 s when unset).
func TestLoadTimeouts(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		request time.Duration
		want    serverTimeouts
	}{
		{nil, 0, serverTimeouts{ReadHeader: 10 * time.Second, ReadBody: 10 * time.Second, Write: 310 * time.Second, Idle: 120 * time.Second}},
		{map[string]string{"LOCAL_READ_HEADER_TIMEOUT": "1s", "LOCAL_READ_BODY_TIMEOUT": "2s"}, 60 * time.Second,
			serverTimeouts{ReadHeader: time.Second, ReadBody: 2 * time.Second, Write: 70 * time.Second, Idle: 120 * time.Second}},
	} {
		got, err := loadTimeouts(func(k string) string { return c.env[k] }, c.request)
		if err != nil || got != c.want {
			t.Errorf("loadTimeouts(%v, %v) = %+v, %v; want %+v", c.env, c.request, got, err, c.want)
		}
	}
}
