// Package provoke makes the kernel produce the memory events memtrace
// traces, for real, so that privileged end-to-end tests need no mocks:
//
//   - AllocFailures: kmem:mm_page_alloc firing with no page (pfn == -1UL),
//     from an accounted allocation failing its memory cgroup charge;
//   - WarnAllocFailure: the same, but reaching warn_alloc() so the kernel
//     logs "vmalloc error: size …, failed to allocate pages";
//   - ExtFrag: kmem:mm_page_alloc_extfrag, from unmovable allocations that
//     run the unmovable free lists dry and claim movable pageblocks;
//   - ReserveHugePages and Huge: hugetlb pools and shmget(SHM_HUGETLB) /
//     mmap(MAP_HUGETLB) requests that succeed or fail with ENOMEM.
//   - MemcgReclaim: vmscan:mm_vmscan_memcg_reclaim_begin/_end, from reading
//     a file larger than the reader's memory cgroup limit;
//   - Compaction: compaction:mm_compaction_try_to_compact_pages (and the
//     kswapd wakeup and direct reclaim that come with it), from growing the
//     huge page pool once no free block of its order is left.
//
// The requests come from a child process (a re-exec of the running binary,
// see the package's init) whose worker thread has a chosen comm, so events
// can be attributed by pid, tid and comm, and so that the calling test
// process is never itself constrained by a memory limit.
//
// Every function cleans up after itself (cgroups, pipes, segments, pool
// sizes), also on error. They need root; without it they return errors.
package provoke
