package main

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/keygate/keygate/internal/openapiclient"
)

// TestGeneratedClient: the client oapi-codegen generated from the
// function's OpenAPI document (internal/openapiclient) lists cmd/local's
// keys with the admin key: 200, parsed into its types.
func TestGeneratedClient(t *testing.T) {
	port, lines := startLocal(t, cleanEnv())
	var admin string
	for _, l := range lines {
		if m := adminKeyLine.FindStringSubmatch(l); m != nil {
			admin = m[1]
		}
	}
	if admin == "" {
		t.Fatalf("no admin key in %q", lines)
	}
	c, err := openapiclient.NewClientWithResponses("http://localhost:"+port, openapiclient.WithRequestEditorFn(
		func(_ context.Context, r *http.Request) error { r.Header.Set("X-API-Key", admin); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	limit := 10
	resp, err := c.ListKeysWithResponse(t.Context(), &openapiclient.ListKeysParams{Limit: &limit})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil {
		t.Fatalf("GET /v1/keys = %d %s, want 200 and a key list", resp.StatusCode(), resp.Body)
	}
	var names []string
	for _, k := range resp.JSON200.Keys {
		names = append(names, k.Name)
	}
	if len(names) != 2 || !slices.Contains(names, "demo key") {
		t.Errorf("listed %q, want cmd/local's two keys, the demo key among them", names)
	}
	bad, err := c.ListKeysWithResponse(t.Context(), &openapiclient.ListKeysParams{}, func(_ context.Context, r *http.Request) error {
		r.Header.Del("X-API-Key")
		return nil
	})
	if err != nil || bad.StatusCode() != http.StatusUnauthorized || bad.ApplicationproblemJSON401 == nil || bad.ApplicationproblemJSON401.Code != "missing_api_key" {
		t.Errorf("GET /v1/keys without a key = %v %+v, want 401 missing_api_key parsed", err, bad)
	}
}
