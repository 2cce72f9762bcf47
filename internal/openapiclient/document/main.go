// Command document writes the function's OpenAPI document, for the key
// header X-API-Key, to the file its argument names: the input of
// oapi-codegen for package openapiclient.
package main

import (
	"fmt"
	"os"

	"github.com/keygate/keygate"
)

func main() {
	doc, err := keygate.Document("X-API-Key")
	if err == nil && len(os.Args) != 2 {
		err = fmt.Errorf("usage: document FILE")
	}
	if err == nil {
		err = os.WriteFile(os.Args[1], doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "document:", err)
		os.Exit(1)
	}
}
