#!/usr/bin/env python3
"""Regenerates the history mutants: make-history.py TREE [OUT]

TREE is a Linux 7.3.4 tree with vm/netdevsim-zcrx applied (read only); OUT defaults to this
directory. Each entry below re-creates the bug one upstream fix removed, as an exact snippet
replacement that must occur once in TREE; the patch header carries the fix's commit, subject and
CVE (README.md). Run by hand, not by the harness."""
import subprocess, os, sys, tempfile
if len(sys.argv) < 2:
    sys.exit("usage: make-history.py TREE [OUT]")
T = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
M=[
 dict(n='01', area='recv', name='recv-limit-overshoot', commit='09cfd3c52ea7', subject='io_uring/zcrx: fix overshooting recv limit', cve='CVE-2025-40046', kind='logic', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tdesc->count -= (offset - start_off);\n\treturn offset - start_off;\n', new='\treturn offset - start_off;\n',
  breaks='io_zcrx_recv_skb no longer charges what it consumed against desc->count, so a RECV_ZC with a len limit reads past it (the request overshoots its limit: more bytes, and no final res=0 CQE at the limit)',
  cases='drain.len_cap'),
 dict(n='02', area='registration', name='dma-dev-of-queue-minus-one', commit='3a0ac202534b', subject='io_uring/zcrx: fix ifq->if_rxq is -1, get dma_dev is NULL', cve='', kind='logic', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tifq->dev = netdev_queue_get_dma_dev(ifq->netdev, if_rxq, NETDEV_QUEUE_TYPE_RX);\n', new='\tifq->dev = netdev_queue_get_dma_dev(ifq->netdev, ifq->if_rxq, NETDEV_QUEUE_TYPE_RX);\n',
  breaks='the DMA device is looked up for ifq->if_rxq, still -1 at that point, instead of the queue asked for: a driver with a per-queue DMA device (ndo_queue_get_dma_dev) answers NULL and every registration fails with EOPNOTSUPP',
  equivalent='on netdevsim-zcrx and on any driver without ndo_queue_get_dma_dev the lookup ignores the index (dev.parent), so no case here can tell; it needs such a driver (hardware)',
  cases='(hardware) nic.zcrx_register on a driver with ndo_queue_get_dma_dev'),
 dict(n='03', area='registration', name='nodev-large-rx-buf-len', commit='a9d008489f0c', subject='io_uring/zcrx: reject REG_NODEV with large rx_buf_size', cve='', kind='validation', dir='revert', how='reverted',
  file='io_uring/zcrx.c', old='\tif (!ifq->dev && buf_size_shift != PAGE_SHIFT)\n\t\treturn -EOPNOTSUPP;\n', new='',
  breaks='a NODEV registration with rx_buf_len above PAGE_SIZE is no longer refused with EOPNOTSUPP: the area is cut into large chunks there is no device to need',
  cases='registration.nodev_rx_buf_len'),
 dict(n='04', area='import-export', name='import-flags-unchecked', commit='4ae1c8ffc1b7', subject='io_uring/zcrx: check unsupported flags on import', cve='', kind='validation', dir='revert', how='reverted',
  file='io_uring/zcrx.c', old='\tif (reg->flags & ~ZCRX_REG_IMPORT)\n\t\treturn -EINVAL;\n', new='',
  breaks='ZCRX_REG_IMPORT accepts any other flag with it (IMPORT|NODEV imports instead of EINVAL), so a flag given a meaning later is silently ignored on import',
  cases='registration.nodev_import'),
 dict(n='05', area='registration', name='rx-page-size-always-set', commit='3d17d76d1ffb', subject="io_uring/zcrx: don't set rx_page_size when not requested", cve='', kind='logic', dir='revert', how='reverted',
  file='io_uring/zcrx.c', old='\tif (reg->rx_buf_len)\n\t\tmp_param.rx_page_size = 1U << ifq->niov_shift;\n', new='\tmp_param.rx_page_size = 1U << ifq->niov_shift;\n',
  breaks='every registration on a device asks the queue for rx_page_size, also when the user did not set rx_buf_len: a driver without QCFG_RX_PAGE_SIZE (netdevsim-zcrx, most NICs) refuses all zcrx registrations with EOPNOTSUPP',
  cases='nic.zcrx_register nic.zero_copy nic.refill_from_rq'),
 dict(n='06', area='rq-parse', name='rq-headers-not-cleared', commit='4f02cc4071a1', subject='io_uring/zcrx: clear RQ headers on init', cve='', kind='uapi', dir='revert', how='reverted',
  file='io_uring/zcrx.c', old='\tmemset(ifq->rq.ring, 0, sizeof(*ifq->rq.ring));\n\treturn 0;\n', new='\treturn 0;\n',
  breaks='the RQ head and tail keep whatever the user memory held before registration: the kernel starts from a stale tail (refilling garbage entries) and user space reads a head that is not 0',
  cases='(new) rq.headers_cleared: register on a user region whose header bytes are not zero, expect_rq head 0 tail 0'),
 dict(n='07', area='provider', name='uref-put-not-atomic', commit='003049b1c4fb', subject='io_uring/zcrx: fix user_ref race between scrub and refill paths', cve='CVE-2026-43121', kind='race', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\told = atomic_read(uref);\n\tdo {\n\t\tif (unlikely(old < refs))\n\t\t\treturn false;\n\t} while (!atomic_try_cmpxchg(uref, &old, old - refs));\n', new='\told = atomic_read(uref);\n\tif (unlikely(old < refs))\n\t\treturn false;\n\tatomic_sub(refs, uref);\n',
  breaks='the user-ref check and decrement are two steps again: scrub (atomic_xchg to 0, without rq.lock) between them lets the refill path return the same niov to the freelist a second time (double free, freelist overflow caught by the WARN in io_zcrx_return_niov_freelist)',
  cases='(stress, debug kernel) ring exit against refill and FLUSH_RQ'),
 dict(n='08', area='drain', name='flush-rq-unlocked', commit='af07330e28ad', subject='io_uring/zcrx: fix rq flush locking', cve='', kind='locking', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\t\tscoped_guard(spinlock_bh, &rq->lock) {\n\t\t\tnr = zcrx_parse_rq(netmems, ZCRX_FLUSH_BATCH, zcrx, rq);\n\t\t\tzcrx_return_buffers(netmems, nr);\n\t\t}\n', new='\t\tnr = zcrx_parse_rq(netmems, ZCRX_FLUSH_BATCH, zcrx, rq);\n\t\tzcrx_return_buffers(netmems, nr);\n',
  breaks='ZCRX_CTRL_FLUSH_RQ parses the RQ without rq.lock, racing the page pool refill of the same RQ (both move the cached head); lockdep_assert_held in zcrx_parse_rq warns on the first flush on a lockdep kernel',
  cases='rq.flush_returns rq.flush_batches (debug kernel: lockdep splat); stress: FLUSH_RQ against refill on netdevsim-zcrx'),
 dict(n='09', area='registration', name='post-open-error-frees-directly', commit='5d540e450895', subject='io_uring/zcrx: fix post open error handling', cve='CVE-2026-43174', kind='uaf', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='ifq_free:\n\tzcrx_unregister(ifq, ctx);\n\treturn ret;\n', new='ifq_free:\n\tio_close_queue(ifq);\n\tio_zcrx_ifq_free(ifq);\n\treturn ret;\n',
  breaks='a registration that fails after the queue was opened (a copy-out EFAULT) frees the instance itself instead of dropping its references: a page pool that outlives the queue close still points at the freed ifq (use after free when it is destroyed)',
  cases='(new) nic.outputs_readonly on netdevsim-zcrx; KASAN on the debug kernel'),
 dict(n='10', area='registration', name='user-struct-not-held', commit='0fcccfd87152', subject='io_uring/zcrx: fix user_struct uaf', cve='', kind='uaf', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tif (ctx->user) {\n\t\tget_uid(ctx->user);\n\t\tifq->user = ctx->user;\n\t}\n', new='\tif (ctx->user)\n\t\tifq->user = ctx->user;\n',
  breaks='the instance keeps ctx->user without its own reference and free_uid()s it on free: an instance that outlives its ring (exported, imported by another process) uses and drops a user_struct that may be gone',
  cases='(debug kernel) isolation.import_across_processes, import.exporter_ring_closed: refcount underflow / KASAN only when the user has no other reference (a fresh uid)'),
 dict(n='11', area='recv', name='fallback-copy-src-offset-stuck', commit='e9a9dcb4ccb3', subject='io_uring/zcrx: increment fallback loop src offset', cve='', kind='logic', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\t\tio_zcrx_get_niov_uref(niov);\n\t\tsrc_offset += n;\n\t\tlen -= n;\n', new='\t\tio_zcrx_get_niov_uref(niov);\n\t\tlen -= n;\n',
  breaks='the copy fallback does not move on in the source when a chunk fills more than one buffer: the second and later buffers repeat the chunk\'s first bytes (corrupt data on every copy-fallback receive of a fragment larger than a page)',
  cases='drain.sizes drain.two_connections rq.flush_returns (payload check)'),
 dict(n='12', area='registration', name='import-umem-page-array-leaked', commit='0ae91d8ab709', subject='io_uring/zcrx: fix page array leak', cve='', kind='leak', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tunpin_user_pages(pages, nr_pages);\n\tkvfree(pages);\n\treturn ret;\n}\n', new='\tunpin_user_pages(pages, nr_pages);\n\treturn ret;\n}\n',
  breaks='io_import_umem\'s error path unpins the pages but no longer frees the page array it pinned them into: every area import that fails after io_pin_pages (sg table, DMA map or RLIMIT_MEMLOCK accounting failure) leaks the array (kmemleak: an unreferenced object allocated by io_pin_pages)',
  cases='registration.memlock_accounting (debug kernel: kmemleak; its ENOMEM comes from the accounting step, after the pages were pinned); fault_sweep cases'),
 dict(n='13', area='registration', name='area-ifq-set-after-import', commit='720df2310b89', subject='io_uring/zcrx: fix null ifq on area destruction', cve='', kind='uaf', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tarea->ifq = ifq;\n\n\tret = io_import_area(ifq, &area->mem, area_reg);\n\tif (ret)\n\t\tgoto err;\n', new='\tret = io_import_area(ifq, &area->mem, area_reg);\n\tif (ret)\n\t\tgoto err;\n\tarea->ifq = ifq;\n',
  also=[('\t\t__io_zcrx_unmap_area(ifq, area);\n\t\tio_zcrx_free_area(ifq, area);\n\t}\n\treturn ret;\n', '\t\t__io_zcrx_unmap_area(area->ifq, area);\n\t\tio_zcrx_free_area(area->ifq, area);\n\t}\n\treturn ret;\n')],
  breaks='the area learns its ifq only after its memory was imported, and the error path tears the area down through area->ifq (as before the fix, when the destruction helpers took the ifq from the area): an import that fails (bad address, unpinnable memory, a dmabuf error) hands a NULL ifq to __io_zcrx_unmap_area, whose lockdep_assert_held(&ifq->pp_lock) then asks about a lock at a NULL-based address that is not the one held: a lockdep kernel warns (or faults on it); a production kernel compiles the assertion out and returns early on the unmapped area, never touching the ifq',
  cases='area.checks (debug kernel: the lockdep assertion in __io_zcrx_unmap_area on a NULL ifq)'),
 dict(n='14', area='registration', name='account-failure-returns-pinned', commit='6bbd3411ff87', subject="io_uring/zcrx: don't leak pages on account failure", cve='', kind='leak', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tif (ret < 0) {\n\t\tmem->account_pages = 0;\n\t\tgoto out_err;\n\t}\n', new='\tif (ret < 0) {\n\t\tmem->account_pages = 0;\n\t\treturn ret;\n\t}\n',
  breaks='an area whose pages cannot be accounted against RLIMIT_MEMLOCK returns ENOMEM with the pages still pinned and their page array and sg table allocated: nothing refers to them any more (kmemleak), and the pinned pages are never released',
  cases='registration.memlock_accounting (debug kernel: kmemleak)'),
 dict(n='15', area='registration', name='sg-init-failure-returns-pinned', commit='d9f595b9a65e', subject='io_uring/zcrx: fix leaking pages on sg init fail', cve='', kind='leak', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\t\t\t\t\tGFP_KERNEL_ACCOUNT);\n\tif (ret)\n\t\tgoto out_err;\n', new='\t\t\t\t\tGFP_KERNEL_ACCOUNT);\n\tif (ret)\n\t\treturn ret;\n',
  breaks='when sg_alloc_table_from_pages fails, io_import_umem returns with the pages pinned and the page array allocated (and a partly built sg table): only an allocation failure shows it, so only fault injection does',
  cases='registration.fault_sweep_nodev (debug kernel: fail-nth reaches the sg table allocation; kmemleak)'),
 dict(n='16', area='registration', name='unmap-clears-unallocated-niovs', commit='52dcd1776bed', subject="io_uring/zcrx: don't clear not allocated niovs", cve='', kind='logic', dir='revert', how='re-created',
  file='io_uring/zcrx.c', old='\tif (area->nia.niovs) {\n\t\tfor (i = 0; i < area->nia.num_niovs; i++)\n\t\t\tnet_mp_niov_set_dma_addr(&area->nia.niovs[i], 0);\n\t}\n', new='\tfor (i = 0; i < area->nia.num_niovs; i++)\n\t\tnet_mp_niov_set_dma_addr(&area->nia.niovs[i], 0);\n',
  breaks='unmapping an area clears the DMA address of every niov whether or not the niov array was allocated: a device area whose niov allocation failed (num_niovs already set, niovs NULL) writes through a NULL array on the error path',
  cases='nic.fault_sweep_register (debug kernel: fail-nth reaches the niov array allocation of a mapped area; a NULL pointer dereference)'),
 dict(n='17', area='registration', name='entry-mark-is-free-mark', commit='8ae2837d5a97', subject="io_uring/zcrx: don't use mark0 for allocating xarray", cve='', kind='logic', dir='revert', how='reverted',
  file='io_uring/zcrx.c', old='\treturn xa_get_mark(&ctx->zcrx_ctxs, id, XA_MARK_1);\n', new='\treturn xa_get_mark(&ctx->zcrx_ctxs, id, XA_MARK_0);\n',
  also=[('\txa_set_mark(&ctx->zcrx_ctxs, id, XA_MARK_1);\n', '\txa_set_mark(&ctx->zcrx_ctxs, id, XA_MARK_0);\n')],
  breaks='the terminated-instance mark is XA_MARK_0, which in an allocating xarray (XA_FLAGS_ALLOC) is XA_FREE_MARK: marking an instance terminated also tells xa_alloc its index is free, so an allocation after the mark could reuse the index of a live instance and overwrite it',
  equivalent='on 7.3.4 the mark is set only in io_terminate_zcrx, called from io_ring_exit_work once the ring file is released; no registration (no xa_alloc on zcrx_ctxs) can follow on that ring, and io_unregister_zcrx finds the entries with XA_PRESENT and erases them whatever their free mark (and xa_store cleared the free mark of each live instance, so the WARN_ON_ONCE checks read the same), so nothing a case can do observes it',
  cases='- (not observable on 7.3.4: see Equivalent)'),
]
hdr_common='Base: Debian linux 7.3.4 (io_uring/zcrx.c) with vm/netdevsim-zcrx applied\n'
series=[]
for m in M:
    p=os.path.join(T,m['file'])
    src=open(p).read()
    c=src.count(m['old'])
    if c!=1:
        sys.exit(f"{m['n']}: the snippet occurs {c} times in {p} (want 1)")
    new=src.replace(m['old'],m['new'])
    for o,n in m.get('also',[]):
        if new.count(o)!=1:
            sys.exit(f"{m['n']}: a further snippet occurs {new.count(o)} times in {p} (want 1)")
        new=new.replace(o,n)
    tmp=tempfile.mkdtemp(); a=os.path.join(tmp,'a'); b=os.path.join(tmp,'b')
    for d,t in ((a,src),(b,new)):
        os.makedirs(os.path.dirname(os.path.join(d,m['file'])),exist_ok=True)
        open(os.path.join(d,m['file']),'w').write(t)
    diff=subprocess.run(['diff','-u','--label','a/'+m['file'],'--label','b/'+m['file'],os.path.join(a,m['file']),os.path.join(b,m['file'])],capture_output=True,text=True).stdout
    fn=f"{m['n']}-{m['area']}-{m['name']}.patch"
    eq=f"Equivalent: {m['equivalent']}\n" if m.get('equivalent') else ''
    head=f"Mutant: {m['name']}\nArea: {m['area']}\nKind: {m['kind']}\n{hdr_common}Commit: {m['commit']}\nSubject: {m['subject']}\nCVE: {m['cve'] or '-'}\nDirection: {m['dir']}\nHow: {m['how']}\nBreaks: {m['breaks']}\nExpected-killers: {m['cases']}\n{eq}---\n"
    open(os.path.join(OUT,fn),'w').write(head+diff)
    series.append(fn)
open(os.path.join(OUT,'series'),'w').write('# History mutants: each re-creates the bug one upstream zcrx fix removed (README.md)\n'+'\n'.join(series)+'\n')
print(series)
