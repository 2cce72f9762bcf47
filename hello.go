package keygate

import "net/http"

// helloResponse is the body of GET /.
type helloResponse struct {
	Message string `json:"message"`
}

// handleHello answers GET / with {"message":"Hello World"}: the simplest
// proof that a key works.
func handleHello(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, helloResponse{Message: "Hello World"})
}
