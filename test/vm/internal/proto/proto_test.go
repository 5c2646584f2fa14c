package proto

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadStream(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("kernel noise before anything\n")
	b.WriteString(Marker + "info kernel=6.1.0-56-amd64 cgroup=v1\n")
	b.WriteString(Marker + "begin internal/probe/loader\n=== RUN   TestX\n--- PASS: TestX (0.00s)\n")
	b.WriteString(Marker + "end internal/probe/loader exit=1 seconds=2.5\n")
	if err := WriteFile(&b, "tmp/e2e/a.json", bytes.Repeat([]byte("{}\n"), 100)); err != nil {
		t.Fatal(err)
	}
	b.WriteString(Marker + "begin e2e\npartial output, then the guest died")
	var echo bytes.Buffer
	s, err := Read(&b, &echo)
	if err != nil {
		t.Fatal(err)
	}
	if s.Done || s.InfoAt.IsZero() || s.Info["kernel"] != "6.1.0-56-amd64" || s.Info["cgroup"] != "v1" {
		t.Errorf("info %v, done %v", s.Info, s.Done)
	}
	if len(s.Results) != 2 {
		t.Fatalf("results %+v", s.Results)
	}
	r := s.Results[0]
	if r.Name != "internal/probe/loader" || r.Exit != 1 || r.Seconds != 2.5 || !strings.Contains(r.Output, "--- PASS: TestX") {
		t.Errorf("first result %+v", r)
	}
	if r := s.Results[1]; r.Name != "e2e" || r.Exit != -1 || !strings.Contains(r.Output, "guest died") {
		t.Errorf("unfinished step %+v", r)
	}
	if got := string(s.Files["tmp/e2e/a.json"]); got != strings.Repeat("{}\n", 100) {
		t.Errorf("file %q", got)
	}
	if strings.Contains(echo.String(), "e30K") {
		t.Error("file contents echoed")
	}
}
