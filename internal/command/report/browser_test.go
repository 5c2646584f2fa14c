package report

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/present/outfile"
)

// chromium finds Debian's chromium (scripts/test-deps.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (scripts/test-deps.sh installs Debian's): the report cannot be opened in a real browser")
	return ""
}

// headless runs chromium on a local file, offline: no network, no
// sandbox (tests run as root), a profile of its own.
func headless(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestReportInBrowser opens a report in headless Chromium: the screenshot
// is not blank, and the DOM the browser built holds one mark per failure
// event and one frame per stack frame of the file, with the hostile
// process name as text (no element, no script run).
func TestReportInBrowser(t *testing.T) {
	bin := chromium(t)
	path := writeDoc(t, incidentDoc())
	ins, err := Load([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := outfile.Write(page, func(w io.Writer) error { return Write(w, ins, "test") }); err != nil {
		t.Fatal(err)
	}
	dom := string(headless(t, bin, page, "--dump-dom"))
	if len(dom) < 1000 {
		t.Fatalf("chromium's DOM is %d bytes:\n%s", len(dom), dom)
	}
	checkPage(t, dom, countsOf(t, path))
	if !bytes.Contains([]byte(dom), []byte("<title>memtrace report</title>")) {
		t.Error("the page's title changed: a script ran")
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	headless(t, bin, page, "--screenshot="+shot, "--window-size=1100,2400", "--hide-scrollbars")
	checkNotBlank(t, shot)
}

// checkNotBlank fails unless the image has many colours and a good share
// of pixels that are not the background.
func checkNotBlank(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]bool{}
	var ink, total int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			total++
			if r>>8 < 235 || g>>8 < 235 || bl>>8 < 235 {
				ink++
			}
		}
	}
	t.Logf("screenshot %dx%d: %d colours, %.1f%% ink", b.Dx(), b.Dy(), len(colours), 100*float64(ink)/float64(total))
	if len(colours) < 20 || ink*100 < total*3 {
		t.Errorf("the screenshot looks blank: %d colours, %d of %d pixels not background", len(colours), ink, total)
	}
}
