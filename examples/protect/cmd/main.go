// Command main serves the function on this machine: go run ./cmd
package main

import (
	"example.com/things"
	"github.com/keygate/keygate/apikey/devserver"
)

// main prints demo keys: KEY grants things:read, OTHER_KEY does not.
func main() { devserver.Main(things.Routes, "things:read") }
