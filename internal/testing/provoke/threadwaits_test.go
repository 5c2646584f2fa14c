package provoke

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestThreadWaits(t *testing.T) {
	got := threadWaits(os.Getpid())
	// This process's main thread is among them, running or sleeping.
	var main bool
	for _, th := range strings.Split(got, "; ") {
		main = main || strings.HasPrefix(th, fmt.Sprintf("%d R ", os.Getpid())) || strings.HasPrefix(th, fmt.Sprintf("%d S ", os.Getpid()))
	}
	if !main {
		t.Errorf("threadWaits(self) = %q, no line of thread %d", got, os.Getpid())
	}
	if got := threadWaits(-1); !strings.Contains(got, "no such file") {
		t.Errorf("threadWaits(-1) = %q, want the read error", got)
	}
}
