package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLibraryOnly checks that apikey, and the library it is built on,
// depend on neither the bingo function (the root package) nor the Functions
// Framework, so that library users can go install the CLI and import the
// library without them. The root package is listed too, to show that the
// check would see the framework.
func TestLibraryOnly(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	deps := func(pkg string) []string {
		t.Helper()
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
			}
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	const root, framework = "github.com/keygate/keygate", "github.com/GoogleCloudPlatform/functions-framework-go"
	isFramework := func(p string) bool { return strings.HasPrefix(p, framework+"/") || p == framework }
	for _, pkg := range []string{root + "/cmd/apikey", root + "/apikey"} {
		d := deps(pkg)
		if !slices.Contains(d, pkg) || !slices.Contains(d, root+"/apikey/store") {
			t.Fatalf("go list -deps %s = %q: not the package's dependencies", pkg, d)
		}
		if i := slices.IndexFunc(d, isFramework); i >= 0 {
			t.Errorf("%s depends on the Functions Framework (%s)", pkg, d[i])
		}
		if slices.Contains(d, root) {
			t.Errorf("%s depends on the function, package %s", pkg, root)
		}
	}
	if !slices.ContainsFunc(deps(root), isFramework) {
		t.Errorf("go list -deps %s shows no Functions Framework: the check above cannot see it", root)
	}
}
