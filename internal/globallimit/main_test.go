package globallimit

import (
	"os"
	"testing"

	"github.com/keygate/keygate/internal/testrun"
)

// TestMain says what the tests ran with: redis-server, or not (testrun).
func TestMain(m *testing.M) { os.Exit(testrun.Main(m)) }
