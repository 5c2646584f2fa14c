package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/memtrace/memtrace/pkg/event"
)

// read drains one ring buffer until the reader is closed.
func (s *Session) read(a *attached) {
	defer s.wg.Done()
	var rec ringbuf.Record
	for {
		if err := a.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) && s.draining.Load() {
				return // everything produced before Stop has been read
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		ev, err := s.decode(a.signal, rec.RawSample)
		if err != nil {
			// A malformed record would be a bug in memtrace itself; count it
			// as lost rather than crash a tool run during an incident.
			s.decodeErrors.Add(1)
			continue
		}
		select {
		case s.events <- ev:
		case <-s.done:
			return
		}
	}
}

// decode turns a raw record into an event with numbers, no names.
func (s *Session) decode(sig event.Signal, raw []byte) (event.Event, error) {
	switch sig {
	case event.SignalAlloc:
		// The alloc ring buffer carries two record types: tell them by
		// the header's kind.
		if len(raw) > kindOffset && allocEventKind(raw[kindOffset]) == allocEventKindEVENT_WARN_ALLOC {
			var r allocWarnEvent
			if err := decodeRecord(raw, &r); err != nil {
				return event.Event{}, err
			}
			return s.warnEvent(r), nil
		}
		var r allocAllocEvent
		if err := decodeRecord(raw, &r); err != nil {
			return event.Event{}, err
		}
		return s.allocEvent(r), nil
	case event.SignalExtfrag:
		var r extfragExtfragEvent
		if err := decodeRecord(raw, &r); err != nil {
			return event.Event{}, err
		}
		return s.extfragEvent(r), nil
	case event.SignalHugetlb:
		var r hugetlbHugetlbEvent
		if err := decodeRecord(raw, &r); err != nil {
			return event.Event{}, err
		}
		return s.hugetlbEvent(r), nil
	}
	return event.Event{}, fmt.Errorf("unknown signal %q", sig)
}

// kindOffset is where event_hdr.kind sits in every record.
var kindOffset = int(unsafe.Offsetof(eventHdr{}.Kind))

func decodeRecord(raw []byte, v any) error {
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, v); err != nil {
		return fmt.Errorf("decoding record of %d bytes: %w", len(raw), err)
	}
	return nil
}
