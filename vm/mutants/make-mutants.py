#!/usr/bin/env python3
"""Regenerates vm/mutants/*.patch and series from the (old, new) snippets below, against a kernel tree:
    python3 vm/mutants/make-mutants.py <linux tree> vm/mutants
Each snippet must occur exactly once in its file; the patches are what the campaign applies."""
import os, subprocess, sys, tempfile, shutil
SRC = sys.argv[1]   # kernel tree root
OUT = sys.argv[2]   # vm/mutants
M = []
def m(name, area, kind, breaks, old, new, file="io_uring/zcrx.c", nth=1, equivalent=""):
    M.append(dict(name=name, area=area, kind=kind, breaks=breaks, old=old, new=new, file=file, nth=nth, equivalent=equivalent))

# --- memory provider / RQ refill -------------------------------------------------------------
m("refill-ignores-rq", "provider", "logic",
  "the page pool never takes buffers back from the RQ: io_pp_zc_alloc_netmems skips io_zcrx_ring_refill, so only the freelist feeds the NIC and an area smaller than the transfer runs dry",
  "\tallocated = io_zcrx_ring_refill(pp, ifq, netmems, to_alloc);\n", "\tallocated = 0 && io_zcrx_ring_refill(pp, ifq, netmems, to_alloc);\n")
m("refill-head-not-published", "provider", "logic",
  "io_zcrx_ring_refill consumes RQEs but never publishes the new RQ head, so user space sees a full RQ",
  "\t\tallocated++;\n\t}\n\n\tsmp_store_release(&rq->ring->head, rq->cached_head);\n\treturn allocated;\n",
  "\t\tallocated++;\n\t}\n\n\treturn allocated;\n")
m("refill-drops-repeat-refs", "provider", "logic",
  "consecutive RQEs naming one buffer drop all but one user reference: the buffer keeps a user ref and is never recycled",
  "\t\tif (niov == next_niov) {\n\t\t\tniov_refs++;\n", "\t\tif (niov == next_niov) {\n")
m("refill-slow-no-pool", "provider", "logic",
  "buffers handed to the page pool from the freelist are not marked as owned by the pool (net_mp_niov_set_page_pool skipped)",
  "\t\tnet_mp_niov_set_page_pool(pp, niov);\n\t\tnetmems[allocated]", "\t\tnetmems[allocated]")
m("release-leaks-freelist", "provider", "logic",
  "buffers the page pool releases are not put back on the area freelist (lost after a pool is destroyed or shrinks)",
  "\tnet_mp_niov_clear_page_pool(niov);\n\tio_zcrx_return_niov_freelist(niov);\n", "\tnet_mp_niov_clear_page_pool(niov);\n")
m("refill-pp-check-inverted", "provider", "logic",
  "zcrx_put_refill_niov treats buffers of this pool as foreign and buffers of another pool as its own",
  "\tif (unlikely(niov->desc.pp != pp)) {", "\tif (unlikely(niov->desc.pp == pp)) {")
m("uninstall-keeps-mapping", "provider", "logic",
  "io_pp_uninstall (device gone while registered) leaves the areas DMA-mapped: WARN in io_zcrx_free_area and a leak",
  "\tguard(mutex)(&ifq->pp_lock);\n\tio_zcrx_unmap_areas(ifq);\n\tio_zcrx_drop_netdev(ifq);\n",
  "\tguard(mutex)(&ifq->pp_lock);\n\tio_zcrx_drop_netdev(ifq);\n")
m("nl-fill-shift-not-size", "provider", "logic",
  "queue-get/page-pool-get report the buffer shift (12) instead of rx-buf-len (4096)",
  "\t\t\t 1ULL << ifq->niov_shift)) {", "\t\t\t ifq->niov_shift)) {")
m("nl-fill-empty", "provider", "logic",
  "the provider does not describe itself in queue-get/page-pool-get: no io-uring nest",
  "\tstruct io_zcrx_ifq *ifq = mp_priv;\n\tstruct nlattr *nest;\n\tint type;\n\n",
  "\tstruct io_zcrx_ifq *ifq = mp_priv;\n\tstruct nlattr *nest;\n\tint type;\n\n\tif (ifq)\n\t\treturn 0;\n")
m("recv-frag-no-pool-ref", "provider", "logic",
  "a zero-copy buffer handed to user space keeps no page-pool reference, so the pool recycles it and the NIC writes into a buffer user space holds",
  "\tpage_pool_ref_netmem(net_iov_to_netmem(niov));\n\tio_zcrx_get_niov_uref(niov);\n\treturn len;\n",
  "\tio_zcrx_get_niov_uref(niov);\n\treturn len;\n")

# --- RQ parsing ---------------------------------------------------------------------------
m("rqe-pad-ignored", "rq-parse", "validation",
  "an RQE with a nonzero __pad is accepted",
  "\tif (unlikely(rqe->__pad || area_idx >= ifq->nr_areas))", "\tif (unlikely(area_idx >= ifq->nr_areas))")
m("rqe-area-off-by-one", "rq-parse", "boundary",
  "the first invalid area index (== nr_areas) is accepted (array_index_nospec then clamps it to area 0)",
  "area_idx >= ifq->nr_areas))", "area_idx > ifq->nr_areas))")
m("rqe-niov-off-by-one", "rq-parse", "boundary",
  "the first invalid buffer index (== num_niovs) is accepted and clamped to buffer 0",
  "\tif (unlikely(niov_idx >= area->nia.num_niovs))", "\tif (unlikely(niov_idx > area->nia.num_niovs))")
m("rqe-area-bits-kept", "rq-parse", "logic",
  "the buffer index keeps the area token bits, so RQEs naming buffers of area 1 and above are rejected",
  "\tniov_idx = (off & ~IORING_ZCRX_AREA_MASK) >> ifq->niov_shift;", "\tniov_idx = off >> ifq->niov_shift;",
  equivalent="niov_idx is a 32-bit unsigned: (area << 48) >> niov_shift keeps no area bit once truncated while niov_shift <= 16, i.e. rx_buf_len <= 64 KiB; only a device with larger rx buffers and two areas tells it apart (NODEV and netdevsim-zcrx use 4 KiB buffers; nic.large_buffers needs such hardware)")
m("rq-entries-unclamped", "rq-parse", "boundary",
  "a tail more than rq_entries ahead of the head is not clamped: the kernel walks the ring more than once",
  "\treturn min(entries, rq->nr_entries);", "\treturn entries;")
m("refill-rqe-mask-wrong", "rq-parse", "logic",
  "the refill path indexes RQEs with the wrong mask (nr_entries / 2 - 1): it reads the wrong entries",
  "\t*rqe = zcrx_next_rqe(rq, rq->nr_entries - 1);", "\t*rqe = zcrx_next_rqe(rq, rq->nr_entries / 2 - 1);")
m("flush-reads-past-tail", "rq-parse", "logic",
  "FLUSH_RQ consumes up to a whole batch whatever the tail says: the head moves past the tail",
  "\tnr = min(nr, zcrx_rq_entries(rq));", "\tzcrx_rq_entries(rq);")

# --- drain / teardown / flush -------------------------------------------------------------
m("flush-noop", "drain", "logic",
  "ZCRX_CTRL_FLUSH_RQ returns 0 and does nothing (it parses no entry, so none goes back)",
  "\t\t\tnr = zcrx_parse_rq(netmems, ZCRX_FLUSH_BATCH, zcrx, rq);\n",
  "\t\t\tnr = zcrx_parse_rq(netmems, 0, zcrx, rq);\n")
m("flush-no-return", "drain", "logic",
  "FLUSH_RQ consumes the RQEs (head moves) but never returns the buffers",
  "\t\t\tzcrx_return_buffers(netmems, nr);\n\t\t}\n\n\t\ttotal += nr;\n",
  "\t\t\tzcrx_return_buffers(netmems, 0);\n\t\t}\n\n\t\ttotal += nr;\n")
m("flush-one-batch", "drain", "logic",
  "FLUSH_RQ handles at most one batch of 32 entries per call",
  "\t} while (nr == ZCRX_FLUSH_BATCH && total < zcrx->rq.nr_entries);", "\t} while (0);")
m("scrub-skips-user-buffers", "drain", "logic",
  "at teardown the buffers user space still holds are not reclaimed (pool shutdown stalls, memory leaks)",
  "\t\tif (!atomic_read(io_get_user_counter(niov)))\n\t\t\tcontinue;\n", "\t\tcontinue;\n")
m("terminate-keeps-queue", "drain", "logic",
  "ring exit does not unregister the interface queue (queue stays bound until the last reference; WARN at free)",
  "\t\tid++;\n\t\tzcrx_unregister_user(ifq, ctx);\n", "\t\tid++;\n")
m("close-queue-keeps-provider", "drain", "logic",
  "closing the queue does not unbind the memory provider from the rx queue: a new registration on it fails",
  "\t\tif (ifq->if_rxq != -1)\n", "\t\tif (ifq->if_rxq != -1 && !p.mp_ops)\n")
m("fallback-no-user-ref", "drain", "logic",
  "a copy-fallback buffer handed to user space gets no user reference, so returning it through the RQ does nothing and the area runs dry",
  "\t\tio_zcrx_get_niov_uref(niov);\n\t\tsrc_offset += n;", "\t\tsrc_offset += n;")

# --- events -------------------------------------------------------------------------------
m("event-not-oneshot", "events", "logic",
  "an event fires again and again without being re-armed",
  "\tif (type_mask & ifq->fired_notifs)\n\t\treturn;\n\n\treq", "\treq")
m("event-mask-ignored", "events", "logic",
  "events not named in event_desc.type_mask are posted too",
  "\tif (!(type_mask & ifq->allowed_notif_mask))\n\t\treturn;\n", "")
m("event-res-bitmask", "events", "logic",
  "the event CQE carries the type as a bit (1 << type) instead of the type",
  "\treq->cqe.res = type;", "\treq->cqe.res = type_mask;")
m("event-user-data-zero", "events", "logic",
  "the event CQE's user_data is 0 instead of event_desc.user_data",
  "\treq->cqe.user_data = ifq->notif_data;", "\treq->cqe.user_data = 0;")
m("arm-unfired-accepted", "events", "validation",
  "ZCRX_CTRL_ARM_EVENT for an event that has not fired is accepted",
  "\tif (type_mask & ~zcrx->fired_notifs)\n\t\treturn -EINVAL;\n", "")
m("arm-does-not-rearm", "events", "logic",
  "ZCRX_CTRL_ARM_EVENT returns 0 but the event stays disarmed",
  "\tzcrx->fired_notifs &= ~type_mask;\n", "")
m("stats-copy-count-missing", "events", "logic",
  "copy_count in the stats area is never incremented",
  "\t\t\tzcrx_stat_add(&ifq->notif_stats->copy_count, 1);\n", "")
m("copy-event-missing", "events", "logic",
  "ZCRX_EVENT_COPY is never posted on copy fallback",
  "\t\tzcrx_send_notif(ifq, ZCRX_EVENT_COPY);\n", "")
m("alloc-fail-event-missing", "events", "logic",
  "ZCRX_EVENT_ALLOC_FAIL is never posted when the RQ and the freelist are both empty",
  "\t\tzcrx_send_notif(ifq, ZCRX_EVENT_ALLOC_FAIL);\n", "")
m("events-ring-not-attached", "events", "logic",
  "the registering ring is never recorded as the event target, so no event is ever posted",
  "\tif (notif.type_mask)\n\t\tzcrx_set_ring_ctx(ifq, ctx);\n", "\tif (0 && notif.type_mask)\n\t\tzcrx_set_ring_ctx(ifq, ctx);\n")
m("stats-not-zeroed", "events", "logic",
  "the stats area is not cleared at registration: whatever user space left there stays",
  "\tmemset(ifq->notif_stats, 0, sizeof(*ifq->notif_stats));\n", "")

# --- import / export ----------------------------------------------------------------------
m("export-fd-not-cloexec", "import-export", "logic",
  "the exported zcrx fd is installed without O_CLOEXEC",
  "\tfd = get_unused_fd_flags(O_CLOEXEC);", "\tfd = get_unused_fd_flags(0);")
m("export-resv-unchecked", "import-export", "validation",
  "ZCRX_CTRL_EXPORT accepts nonzero reserved bytes",
  "\tif (!mem_is_zero(ce, sizeof(*ce)))\n\t\treturn -EINVAL;\n\n\trefcount_inc", "\trefcount_inc")
m("import-any-file", "import-export", "validation",
  "IMPORT accepts any file with private data (an io_uring fd, ...) as a zcrx box",
  "\tif (file->f_op != &zcrx_box_fops || !file->private_data)", "\tif (!file->private_data)")
m("import-rq-entries-allowed", "import-export", "validation",
  "IMPORT with a nonzero rq_entries is accepted",
  "\tif (reg->if_rxq || reg->rq_entries || reg->area_ptr || reg->region_ptr)",
  "\tif (reg->if_rxq || reg->area_ptr || reg->region_ptr)")
m("import-offsets-missing", "import-export", "logic",
  "IMPORT does not report the RQ offsets",
  "\treg->zcrx_id = id;\n\tio_fill_zcrx_offsets(&reg->offsets);\n", "\treg->zcrx_id = id;\n")
m("import-no-user-ref", "import-export", "logic",
  "an imported ifq takes no user reference: closing either ring tears the queue down under the other",
  "\tifq = file->private_data;\n\trefcount_inc(&ifq->refs);\n\trefcount_inc(&ifq->user_refs);\n",
  "\tifq = file->private_data;\n\trefcount_inc(&ifq->refs);\n")
m("import-flags-unchecked", "import-export", "validation",
  "IMPORT together with other flags (NODEV) is accepted (I5)",
  "\tif (reg->flags & ~ZCRX_REG_IMPORT)\n\t\treturn -EINVAL;\n", "")

# --- registration and control validation ---------------------------------------------------
m("reg-zcrx-id-unchecked", "registration", "validation",
  "a nonzero zcrx_id on input is accepted",
  "\tif (!mem_is_zero(&reg.__resv, sizeof(reg.__resv)) || reg.zcrx_id)", "\tif (!mem_is_zero(&reg.__resv, sizeof(reg.__resv)))")
m("reg-clamp-always", "registration", "validation",
  "rq_entries above the maximum is clamped even without IORING_SETUP_CLAMP",
  "\t\tif (!(ctx->flags & IORING_SETUP_CLAMP))\n\t\t\treturn -EINVAL;\n", "")
m("reg-rq-entries-not-rounded", "registration", "logic",
  "rq_entries is not rounded up to a power of two",
  "\treg.rq_entries = roundup_pow_of_two(reg.rq_entries);\n", "")
m("region-exact-fit-refused", "registration", "boundary",
  "a region exactly as large as the RQ needs is refused",
  "\tif (size > rd->size)\n\t\treturn -EINVAL;", "\tif (size >= rd->size)\n\t\treturn -EINVAL;",
  equivalent="an exact fit cannot be asked for: the RQ needs 128 + 16 * rq_entries bytes with rq_entries a power of two (64 + ... on 7.2), never a multiple of the page, and a region that is not page-sized is EINVAL in io_create_region right after; both sides answer EINVAL")
m("area-len-unaligned-accepted", "registration", "validation",
  "an area whose length is not page aligned is accepted",
  "\tif (area_reg->addr & ~PAGE_MASK || area_reg->len & ~PAGE_MASK)", "\tif (area_reg->addr & ~PAGE_MASK)")
m("ctrl-resv-einval", "registration", "errno",
  "ZCRX_CTRL with nonzero reserved bytes fails with EINVAL instead of EFAULT",
  "\tif (!mem_is_zero(&ctrl.__resv, sizeof(ctrl.__resv)))\n\t\treturn -EFAULT;", "\tif (!mem_is_zero(&ctrl.__resv, sizeof(ctrl.__resv)))\n\t\treturn -EINVAL;")
m("ctrl-unknown-op-einval", "registration", "errno",
  "an unknown ZCRX_CTRL op fails with EINVAL instead of EOPNOTSUPP",
  "\t}\n\n\treturn -EOPNOTSUPP;\n}", "\t}\n\n\treturn -EINVAL;\n}")
m("ctrl-bad-id-enoent", "registration", "errno",
  "ZCRX_CTRL on an unknown zcrx_id fails with ENOENT instead of ENXIO",
  "\tif (!zcrx)\n\t\treturn -ENXIO;", "\tif (!zcrx)\n\t\treturn -ENOENT;")
m("reg-no-cap-check", "registration", "validation",
  "registration does not require CAP_NET_ADMIN",
  "\tif (!capable(CAP_NET_ADMIN))\n\t\treturn -EPERM;\n", "")
m("add-area-token-zero", "registration", "logic",
  "ZCRX_CTRL_ADD_AREA reports token 0 (area 0) for the new area",
  "\tarea_reg.rq_area_token = zcrx_area_id_to_token(zcrx_next_area_id(ifq));", "\tarea_reg.rq_area_token = zcrx_area_id_to_token(0);")
m("reg-rx-buf-len-not-reported", "registration", "logic",
  "registration does not report the buffer length it chose in rx_buf_len",
  "\treg.rx_buf_len = 1U << ifq->niov_shift;\n", "")

# --- receive path -------------------------------------------------------------------------
m("cqe-no-area-token", "recv", "logic",
  "the RECV_ZC CQE offset lacks the area token: data in area 1 and above is reported as area 0",
  "\trcqe->off = offset + zcrx_area_id_to_token(area->area_id);", "\trcqe->off = offset;")
m("cqe-no-more-flag", "recv", "logic",
  "RECV_ZC data CQEs lack IORING_CQE_F_MORE",
  "\tcqe->flags = IORING_CQE_F_MORE;", "\tcqe->flags = 0;")
m("recv-udp-eopnotsupp", "recv", "errno",
  "RECV_ZC on a non-TCP socket fails with EOPNOTSUPP instead of EPROTONOSUPPORT",
  "\t\treturn -EPROTONOSUPPORT;", "\t\treturn -EOPNOTSUPP;")
m("copy-short-chunks", "recv", "logic",
  "copy fallback fills only half of each buffer (more CQEs, each of at most 2048 bytes)",
  "\t\tcc.size = PAGE_SIZE;", "\t\tcc.size = PAGE_SIZE / 2;")

# --- query.c ------------------------------------------------------------------------------
m("query-zcrx-no-features", "query", "logic",
  "IO_URING_QUERY_ZCRX reports no features",
  "\te->features = ZCRX_FEATURES;", "\te->features = 0;", file="io_uring/query.c")
m("query-event-stats-size", "query", "logic",
  "IO_URING_QUERY_ZCRX_EVENT reports a stats size 8 bytes short",
  "\te->stats_size = sizeof(struct zcrx_stats);", "\te->stats_size = sizeof(struct zcrx_stats) - 8;", file="io_uring/query.c")

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    if f.endswith(".patch"):
        os.remove(os.path.join(OUT, f))
series = []
for i, x in enumerate(M, 1):
    path = os.path.join(SRC, x["file"])
    s = open(path).read()
    c = s.count(x["old"])
    if c != 1:
        sys.exit(f"{x['name']}: snippet occurs {c} times")
    t = s.replace(x["old"], x["new"])
    with tempfile.TemporaryDirectory() as d:
        for side, text in (("a", s), ("b", t)):
            p = os.path.join(d, side, x["file"])
            os.makedirs(os.path.dirname(p))
            open(p, "w").write(text)
        r = subprocess.run(["diff", "-u", "-p", "--label", f"a/{x['file']}", "--label", f"b/{x['file']}", f"a/{x['file']}", f"b/{x['file']}"], cwd=d, capture_output=True, text=True)
    diff = r.stdout
    fn = f"{i:02d}-{x['area']}-{x['name']}.patch"
    hdr = (f"Mutant: {x['name']}\nArea: {x['area']}\nKind: {x['kind']}\nBase: Debian linux 7.3.4 ({x['file']})\n"
           f"Breaks: {x['breaks']}\n" + (f"Equivalent: {x['equivalent']}\n" if x['equivalent'] else "") + "---\n")
    open(os.path.join(OUT, fn), "w").write(hdr + diff)
    series.append(fn)
open(os.path.join(OUT, "series"), "w").write("".join(s + "\n" for s in series))
from collections import Counter
print(len(M), Counter(x["area"] for x in M), Counter(x["kind"] for x in M))
