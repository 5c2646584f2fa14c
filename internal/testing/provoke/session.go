package provoke

import (
	"errors"
	"fmt"
	"time"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

// session holds what one provoking run sets up, and undoes it in order.
type session struct {
	cg      *memcg
	child   *child
	counter *tracefs.Counter
	tfsDir  string
	unmount func() error
}

// newSession mounts tracefs if needed, creates the memory cgroup (limit 0:
// none) and starts the child.
func newSession(h hierarchy, cfg config, limit int64, noOOM bool) (s *session, err error) {
	s = &session{}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	if s.tfsDir, s.unmount, err = tracefs.Mount(); err != nil {
		return nil, err
	}
	if limit > 0 {
		if s.cg, err = newMemcg(h, limit, noOOM); err != nil {
			return nil, err
		}
	}
	if s.child, err = startChild(cfg.comm, time.Now().Add(cfg.timeout)); err != nil {
		return nil, err
	}
	return s, nil
}

// count starts counting system:event hits of the child's worker thread.
func (s *session) count(system, event, filter string) error {
	f := fmt.Sprintf("common_pid == %d", s.child.Tid)
	if filter != "" {
		f = filter + " && " + f
	}
	return s.countFilter(system, event, f)
}

// countFilter starts counting system:event hits that match f.
func (s *session) countFilter(system, event, f string) error {
	c, err := tracefs.NewCounter(s.tfsDir, system, event, f)
	if err != nil {
		return err
	}
	s.counter = c
	return nil
}

func (s *session) cgroupFiles(a *failArgs) (err error) {
	if a.Join, err = s.cg.joinFile(a.Thread); err != nil {
		return err
	}
	a.Home, err = s.cg.homeFile(s.child.Pid, s.child.Tid, a.Thread)
	return err
}

// finish completes a report from the child's result and the counter.
func (s *session) finish(rep *Report, res failResult, start time.Time) error {
	rep.Pid, rep.Tids, rep.Comm = s.child.Pid, []int{s.child.Tid}, s.child.Comm
	rep.Attempts, rep.Failed = res.Attempts, res.Failed
	defer func() { rep.Duration = time.Since(start) }()
	return s.readCounter(rep)
}

func (s *session) readCounter(rep *Report) error {
	n, err := s.counter.Count()
	if err != nil {
		return err
	}
	hits, err := s.counter.Hits()
	if err != nil {
		return err
	}
	rep.Events = n
	rep.addHits(hits)
	return nil
}

// close stops the child before removing its cgroup: a cgroup with tasks
// cannot be removed.
func (s *session) close() error {
	var errs []error
	if s.counter != nil {
		errs = append(errs, s.counter.Close())
	}
	if s.child != nil {
		errs = append(errs, s.child.stop())
	}
	if s.cg != nil {
		errs = append(errs, s.cg.remove())
	}
	if s.unmount != nil {
		errs = append(errs, s.unmount())
	}
	return errors.Join(errs...)
}
