// Command main runs the function on this machine with the Functions
// Framework, as Google documents it, on the Firestore emulator:
//
//	FIRESTORE_EMULATOR_HOST=127.0.0.1:8086 go run ./cmd
//
// It serves on PORT (8080), the function named by FUNCTION_TARGET (Things
// when unset: without it, every path is 404), and stops at once when
// Firestore does not answer, saying why.
package main

import (
	"cmp"
	"context"
	"log"
	"os"

	"example.com/things"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Things")
	}
	if err := things.Check(context.Background()); err != nil {
		log.Fatal(err)
	}
	port := cmp.Or(os.Getenv("PORT"), "8080")
	log.Printf("serving %s on http://localhost:%s", os.Getenv("FUNCTION_TARGET"), port)
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
