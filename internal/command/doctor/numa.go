package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// NUMA is the node topology from /sys/devices/system/node.
type NUMA struct {
	Nodes []int `json:"nodes"`
	// Distance[i][j] is the distance from Nodes[i] to Nodes[j] (10 is
	// local); nil when not readable.
	Distance [][]int `json:"distance,omitempty"`
}

// MaxDistance is the largest distance between two nodes, 0 with one node.
func (n NUMA) MaxDistance() int {
	m := 0
	for i, row := range n.Distance {
		for j, d := range row {
			if i != j && d > m {
				m = d
			}
		}
	}
	return m
}

// readNUMA reads the online nodes and their distances. A kernel without
// CONFIG_NUMA has no such directory: one node, no error.
func readNUMA(sysRoot string) (NUMA, error) {
	dir := filepath.Join(sysRoot, "devices/system/node")
	data, err := os.ReadFile(filepath.Join(dir, "online"))
	if os.IsNotExist(err) {
		return NUMA{Nodes: []int{0}}, nil
	}
	if err != nil {
		return NUMA{Nodes: []int{0}}, err
	}
	nodes, err := sysstate.ParseList(string(data), maxNodes)
	if err != nil || len(nodes) == 0 {
		return NUMA{Nodes: []int{0}}, fmt.Errorf("reading %s: %q is not a node list", filepath.Join(dir, "online"), truncate(string(data)))
	}
	n := NUMA{Nodes: nodes}
	for _, node := range nodes {
		path := filepath.Join(dir, fmt.Sprintf("node%d", node), "distance")
		data, err := os.ReadFile(path)
		if err != nil {
			return NUMA{Nodes: nodes}, fmt.Errorf("reading %s: %w", path, unwrapPath(err))
		}
		row, err := parseDistances(string(data), len(nodes))
		if err != nil {
			return NUMA{Nodes: nodes}, fmt.Errorf("reading %s: %w", path, err)
		}
		n.Distance = append(n.Distance, row)
	}
	return n, nil
}

// maxNodes bounds a node list (MAX_NUMNODES is 1024 at most).
const maxNodes = 1024

// parseDistances parses one node's distance file, "10 21".
func parseDistances(s string, want int) ([]int, error) {
	f := strings.Fields(s)
	if len(f) != want {
		return nil, fmt.Errorf("%d distances for %d nodes", len(f), want)
	}
	row := make([]int, len(f))
	for i, v := range f {
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 || d > 255 {
			return nil, fmt.Errorf("distance %q is not a number from 0 to 255", truncate(v))
		}
		row[i] = d
	}
	return row, nil
}
