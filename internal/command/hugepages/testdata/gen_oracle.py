#!/usr/bin/env python3
"""Writes the per-process files of the oracle/ tree (see README.md).
Run from pkg/hugepages/testdata: python3 gen_oracle.py"""
import os

ROOT = "oracle/proc"
MB = 1024

def smaps_entry(start, size_kb, perms, dev, inode, path, kps=4, rss=0, shared_huge=0, private_huge=0, flags="rd wr sh mr mw me ms"):
    end = start + size_kb * 1024
    head = f"{start:012x}-{end:012x} {perms} 00000000 {dev} {inode:<10d}"
    head = (head + "                 " + path) if path else head
    body = [
        ("Size", size_kb), ("KernelPageSize", kps), ("MMUPageSize", kps), ("Rss", rss), ("Pss", rss),
        ("Pss_Dirty", 0), ("Shared_Clean", 0), ("Shared_Dirty", rss if perms.endswith("s") else 0),
        ("Private_Clean", 0), ("Private_Dirty", 0 if perms.endswith("s") else rss), ("Referenced", rss),
        ("Anonymous", 0), ("KSM", 0), ("LazyFree", 0), ("AnonHugePages", 0), ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0), ("Shared_Hugetlb", shared_huge), ("Private_Hugetlb", private_huge),
        ("Swap", 0), ("SwapPss", 0), ("Locked", 0),
    ]
    lines = [head] + [f"{k + ':':<16}{v:>8} kB" for k, v in body]
    lines += ["THPeligible:           0", "ProtectionKey:         0", f"VmFlags: {flags} "]
    return head, "\n".join(lines) + "\n"

def proc(pid, comm, ppid, uid, gid, groups, vmpte, hugetlb_kb, memlock, entries):
    d = os.path.join(ROOT, str(pid))
    os.makedirs(d, exist_ok=True)
    maps, smaps = [], []
    for e in entries:
        h, s = smaps_entry(*e[:6], **e[6] if len(e) > 6 else {})
        maps.append(h)
        smaps.append(s)
    open(os.path.join(d, "maps"), "w").write("\n".join(maps) + "\n")
    open(os.path.join(d, "smaps"), "w").write("".join(smaps))
    open(os.path.join(d, "status"), "w").write(
        f"Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\n"
        f"PPid:\t{ppid}\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{gid}\t{gid}\t{gid}\t{gid}\n"
        f"FDSize:\t64\nGroups:\t{' '.join(map(str, groups))} \nVmPeak:\t  100000 kB\nVmPTE:\t{vmpte:>8} kB\n"
        f"HugetlbPages:\t{hugetlb_kb:>8} kB\nThreads:\t1\nCapEff:\t0000000000000000\n")
    ml = "unlimited" if memlock is None else str(memlock)
    open(os.path.join(d, "limits"), "w").write(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max cpu time              unlimited            unlimited            seconds   \n"
        f"Max locked memory         {ml:<20} {ml:<20} bytes     \n")

lib = (0x7f0000000000, 2048, "r-xp", "fe:00", 247026, "/usr/lib/x86_64-linux-gnu/libc.so.6", dict(rss=1024, flags="rd ex mr mw me"))
# Oracle: three SGA segments on 2 MiB pages (shmids 32769, 65538, 98307),
# 4 + 4554 + 8 pages = 4566 pages, the seed's "in use or promised".
sga = lambda base, fa, fb, fc: [
    (base, 8 * MB, "rw-s", "00:0f", 32769, "/SYSV00000000 (deleted)", dict(kps=2048, shared_huge=fa, flags="rd wr sh mr mw me ms de ht")),
    (base + (1 << 30), 4554 * 2 * MB, "rw-s", "00:0f", 65538, "/SYSV00000000 (deleted)", dict(kps=2048, shared_huge=fb, flags="rd wr sh mr mw me ms de ht")),
    (base + (12 << 30), 16 * MB, "rw-s", "00:0f", 98307, "/SYSV3ca1e1b4 (deleted)", dict(kps=2048, shared_huge=fc, flags="rd wr sh mr mw me ms de ht")),
]
proc(4101, "ora_pmon_orcl", 1, 54321, 54321, [54321, 54322], 2460, 2445312, 98566144 * 1024,
     sga(0x60000000, 8 * MB, 2364 * MB, 16 * MB) + [lib])
proc(4107, "ora_dbw0_orcl", 1, 54321, 54321, [54321, 54322], 2312, 2445312, 98566144 * 1024,
     sga(0x60000000, 8 * MB, 2364 * MB, 16 * MB) + [lib])
# PostgreSQL fell back: a 1100 MiB shared anonymous mapping on 4 KiB pages,
# and its 56-byte System V header segment (shmid 131076).
proc(5120, "postgres", 1, 101, 104, [104, 103], 3208, 0, 65536,
     [(0x7f1000000000, 1100 * MB, "rw-s", "00:01", 2054, "/dev/zero (deleted)", dict(rss=512 * MB)),
      (0x7f2000000000, 4, "rw-s", "00:0f", 131076, "/SYSV0052e2c1 (deleted)", dict(rss=4)),
      lib])
# A process whose name carries a terminal escape, with a file on hugetlbfs.
proc(7001, "x\x1b[2Jevil", 1, 0, 0, [], 64, 4096, None,
     [(0x7f3000000000, 64 * MB, "rw-s", "00:2a", 12, "/dev/hugepages/guest ram", dict(kps=2048, shared_huge=4 * MB, flags="rd wr sh mr mw me ms de ht")),
      lib])
# init maps nothing of interest and must not be listed.
proc(1, "init", 0, 0, 0, [], 40, 0, 65536, [lib])
