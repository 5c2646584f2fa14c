package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/memtrace/memtrace/internal/event"
)

// What every family's records share: struct event_hdr and enum exec_ctx
// of bpf/common.h.

// eventHdr is struct event_hdr of bpf/common.h. bpf2go names it only in the
// alloc bindings; the other program sets embed an identical anonymous
// struct, which converts to this type.
type eventHdr = allocEventHdr

// kindOffset is where event_hdr.kind sits in every record.
var kindOffset = int(unsafe.Offsetof(eventHdr{}.Kind))

// commString cuts a kernel string at its NUL.
func commString(c []int8) string {
	b := make([]byte, 0, len(c))
	for _, x := range c {
		if x == 0 {
			break
		}
		b = append(b, byte(x))
	}
	return string(b)
}

func taskFromHdr(h eventHdr) event.Task {
	return event.Task{Pid: h.Pid, Tid: h.Tid, Comm: commString(h.Comm[:]), CgroupID: h.CgroupId, MemcgID: h.MemcgId}
}

func (s *Session) header(kind event.Kind, h eventHdr) event.Event {
	return event.Event{
		Kind: kind, Time: s.wallTime(h.TsNs), MonoNs: h.TsNs, CPU: h.Cpu,
		Context: contextOf(h.Ctx), Task: taskFromHdr(h),
	}
}

// contextOf names a value of enum exec_ctx (bpf/common.h).
func contextOf(c uint8) event.Context {
	switch allocExecCtx(c) {
	case allocExecCtxCTX_PROCESS:
		return event.ContextProcess
	case allocExecCtxCTX_SOFTIRQ:
		return event.ContextSoftirq
	case allocExecCtxCTX_HARDIRQ:
		return event.ContextHardirq
	case allocExecCtxCTX_NMI:
		return event.ContextNMI
	}
	return event.ContextUnknown
}

// decodeRecord reads a raw ring-buffer record into a generated record type.
func decodeRecord(raw []byte, v any) error {
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, v); err != nil {
		return fmt.Errorf("decoding record of %d bytes: %w", len(raw), err)
	}
	return nil
}
