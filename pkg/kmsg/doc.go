// Package kmsg reads the kernel log without changing it and finds the
// allocation failures the kernel reported there: the "page allocation
// failure" warnings of warn_alloc (warn_alloc_failed before 4.10), the
// vmalloc errors and the allocation stalls, each with the task, order, GFP
// mode, call trace and the zone state the kernel printed after it.
//
// The log comes from /dev/kmsg (opened non-blocking and read from the
// oldest record the kernel still holds: each reader of /dev/kmsg has its
// own position, so nothing is consumed, and nothing is ever cleared), from
// the output of dmesg, or from a copy taken on another host. Copies may be
// plain dmesg output with or without -T, -r or -x, dmesg --time-format
// iso, journalctl -k, /var/log/messages or raw /dev/kmsg records; the
// format is recognised line by line, so concatenated files work too.
//
// Parsing is a streaming state machine (Parser) that groups failures as
// they come (Grouper): memory is bounded whatever the log holds, a
// multi-gigabyte /var/log/messages of a million distinct reports
// included. Lines are cut at 64 KiB, a group keeps one example and a few
// task names, at most MaxGroups groups keep their details (the others are
// counted), and a copy that is not a regular file is read up to
// FileOptions.MaxBytes, so /dev/urandom or a FIFO cannot keep a reader
// going forever.
package kmsg
