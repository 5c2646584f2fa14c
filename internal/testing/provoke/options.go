package provoke

import "time"

// Option adjusts a provoking function.
type Option func(*config)

type config struct {
	comm    string
	method  Method
	timeout time.Duration
}

// WithComm names the child's worker thread (prctl PR_SET_NAME; the kernel
// keeps 15 bytes). A name unique to the test lets a tracefs filter such as
// `comm == "name"` count only its events, even with other tests running.
func WithComm(comm string) Option { return func(c *config) { c.comm = comm } }

// WithMethod chooses how AllocFailures makes allocations fail.
func WithMethod(m Method) Option { return func(c *config) { c.method = m } }

// WithTimeout bounds the whole operation; the child is killed past it.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

func newConfig(defaultComm string, defaultTimeout time.Duration, opts []Option) config {
	c := config{comm: defaultComm, timeout: defaultTimeout}
	for _, o := range opts {
		o(&c)
	}
	if len(c.comm) > 15 {
		c.comm = c.comm[:15]
	}
	return c
}
