"""Compiled (numba) kernels of the HigherHRNet grouping: NMS + top-k candidates, the matching
costs and per-joint update, and refine.

The candidate pass and refine walk the maps in plain loops, so they cost about one read of the
heatmaps (and, for the pairs refine cannot settle early, of the tags) instead of the official
dense passes (a max-pool for NMS, and one full (K, H, W) distance map per person for refine).
Their results equal the official ones exactly: M = heatmap - round(||tag - mean||) is computed
with the same float32 operations in the same order (no fused multiply-add, round half to even),
ties go to the lowest flat index as with np.argmax, and the matching repeats numpy's summation
orders.

Numba compiles them on first use and caches the machine code next to this file (once per
installation: the first bottom-up evaluation waits for it).
"""

from __future__ import annotations

import numba
import numpy as np

#: Refine bounds and visits the pixels by runs of this many pixels of a row (speed only: results
#: never depend on it).
CHUNK = 16
#: Refine's second pass scans the map in blocks of SB_ROWS x SB_RUNS runs (speed only).
SB_ROWS = 8
SB_RUNS = 4

_jit = numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False)
# helpers called in inner loops: inlined (a call would also count references of every array)
_inline = numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False, inline="always")


@_inline
def _shift_min(src, dst, n, s):
    """dst[f] = min(src[f], src[f + s]) for f < n (with a literal s this compiles to vector code)."""
    for f in range(n):
        a = src[f]
        b = src[f + s]
        dst[f] = b if b < a else a


@_inline
def _shift_max(src, dst, n, s):
    """dst[f] = max(src[f], src[f + s]) for f < n."""
    for f in range(n):
        a = src[f]
        b = src[f + s]
        dst[f] = b if b > a else a


@_inline
def _larger(a, b):
    return b if b > a else a


@_inline
def _max16(row, b):
    """max(row[b : b + 16]) folded as a tree: 8 independent pairs, then 4, 2, 1 (short dependency
    chains, unlike one running maximum)."""
    a0 = _larger(row[b], row[b + 8])
    a1 = _larger(row[b + 1], row[b + 9])
    a2 = _larger(row[b + 2], row[b + 10])
    a3 = _larger(row[b + 3], row[b + 11])
    a4 = _larger(row[b + 4], row[b + 12])
    a5 = _larger(row[b + 5], row[b + 13])
    a6 = _larger(row[b + 6], row[b + 14])
    a7 = _larger(row[b + 7], row[b + 15])
    return _larger(_larger(_larger(a0, a4), _larger(a2, a6)), _larger(_larger(a1, a5), _larger(a3, a7)))


@_jit
def nms_candidates(det, threshold, pad, m, strong):
    """Local maxima above `threshold` (top `m` per joint), and what refine needs: the maxima of
    the row runs and the runs whose maximum is above `strong`.

    A pixel is a local maximum when it is >= every pixel of its (2 pad + 1)^2 window clipped to
    the map, i.e. it survives the official NMS (max-pool with padding, then equality).

    Args:
        det: (K, H, W) float32 heatmaps.
        threshold: candidates need value > threshold (>= 0).
        pad: NMS window half-size.
        m: candidates kept per joint (value descending, ties by lower flat index).
        strong: runs with a maximum > strong are listed.

    Returns:
        val_k (K, m) float32 (-inf for empty slots), pix_k (K, m) int64 pixel index y * W + x
        (0 for empty slots), chunk_max (K, H, ceil(W / CHUNK)) float32 maxima of the runs of
        CHUNK pixels of each row, strong_runs (N,) int64 run indices y * ceil(W / CHUNK) + c in
        increasing order per joint, strong_start (K + 1,) int64 offsets of the joints in it.
    """
    k, h, w = det.shape
    n_chunks = (w + CHUNK - 1) // CHUNK
    full = w // CHUNK
    val_k = np.full((k, m), -np.inf, dtype=np.float32)
    pix_k = np.zeros((k, m), dtype=np.int64)
    chunk_max = np.empty((k, h, n_chunks), dtype=np.float32)
    cand_val = np.empty(h * w, dtype=np.float32)
    cand_pix = np.empty(h * w, dtype=np.int64)
    strong_runs = np.empty(k * h * n_chunks, dtype=np.int64)
    strong_start = np.zeros(k + 1, dtype=np.int64)
    n_strong = 0
    for j in range(k):
        n_cand = 0
        for y in range(h):
            # run maxima first ...
            if CHUNK == 16:
                for c in range(full):
                    chunk_max[j, y, c] = _max16(det[j, y], c * CHUNK)
            else:
                for c in range(full):
                    base = c * CHUNK
                    top = det[j, y, base]
                    for x in range(1, CHUNK):
                        v = det[j, y, base + x]
                        top = v if v > top else top
                    chunk_max[j, y, c] = top
            if n_chunks > full:
                top = det[j, y, full * CHUNK]
                for x in range(full * CHUNK + 1, w):
                    v = det[j, y, x]
                    top = v if v > top else top
                chunk_max[j, y, full] = top
            # ... then NMS only inside the runs that reach above the threshold
            for c in range(n_chunks):
                if chunk_max[j, y, c] > strong:
                    strong_runs[n_strong] = y * n_chunks + c
                    n_strong += 1
                if not chunk_max[j, y, c] > threshold:
                    continue
                for x in range(c * CHUNK, min((c + 1) * CHUNK, w)):
                    v = det[j, y, x]
                    if v > threshold:
                        keep = True
                        for yy in range(max(y - pad, 0), min(y + pad + 1, h)):
                            for xx in range(max(x - pad, 0), min(x + pad + 1, w)):
                                if det[j, yy, xx] > v:
                                    keep = False
                                    break
                            if not keep:
                                break
                        if keep:
                            cand_val[n_cand] = v
                            cand_pix[n_cand] = y * w + x
                            n_cand += 1
        strong_start[j + 1] = n_strong
        if n_cand:
            # collected in increasing pixel order: a stable sort on -value keeps that order on ties
            order = np.argsort(-cand_val[:n_cand], kind="mergesort")
            for r in range(min(m, n_cand)):
                val_k[j, r] = cand_val[order[r]]
                pix_k[j, r] = cand_pix[order[r]]
    return val_k, pix_k, chunk_max, strong_runs[:n_strong].copy(), strong_start


@_inline
def _tag_cost(tag, jt, y, x, mean, i):
    """round(||tag[jt, y, x] - mean[i]||) in float32, summed left to right (official order)."""
    dim = tag.shape[3]
    d = tag[jt, y, x, 0] - mean[i, 0]
    total = d * d
    for c in range(1, dim):
        d = tag[jt, y, x, c] - mean[i, c]
        total += d * d
    return np.rint(np.sqrt(total))


@_inline
def _one_box(tag, jt, y, x0, x1, r, box):
    """Min and max of the first (up to) two tag components over pixels x0..x1-1 of row y -> box[r]
    = (min_0, max_0, min_1, max_1); a single component is repeated."""
    d1 = 1 if tag.shape[3] > 1 else 0
    lo0 = hi0 = tag[jt, y, x0, 0]
    lo1 = hi1 = tag[jt, y, x0, d1]
    for x in range(x0 + 1, x1):
        t = tag[jt, y, x, 0]
        lo0 = t if t < lo0 else lo0
        hi0 = t if t > hi0 else hi0
        t = tag[jt, y, x, d1]
        lo1 = t if t < lo1 else lo1
        hi1 = t if t > hi1 else hi1
    box[r, 0] = lo0
    box[r, 1] = hi0
    box[r, 2] = lo1
    box[r, 3] = hi1


@_jit
def _tile_maxima(maxima, h, n_chunks, tile_max, sb_max):
    """Heatmap maxima of the tiles (SB_ROWS rows x one run) and blocks (SB_ROWS rows x SB_RUNS
    runs) of one map, from its run maxima (h * n_chunks,)."""
    sb_cols = (n_chunks + SB_RUNS - 1) // SB_RUNS
    for band in range((h + SB_ROWS - 1) // SB_ROWS):
        y0 = band * SB_ROWS
        y1 = min(y0 + SB_ROWS, h)
        for c in range(n_chunks):
            top = maxima[y0 * n_chunks + c]
            for y in range(y0 + 1, y1):
                v = maxima[y * n_chunks + c]
                top = v if v > top else top
            tile_max[band * n_chunks + c] = top
            sb = band * sb_cols + c // SB_RUNS
            sb_max[sb] = top if c % SB_RUNS == 0 else max(sb_max[sb], top)


@_jit
def _band_box(tag, jt, n_chunks, band, lo, hi, lo2, hi2, tile_box, sb_box):
    """Tag boxes (min and max of the first two components) of the tiles and blocks of one band of
    SB_ROWS rows of map jt.

    The band is reduced across its rows element by element (lo, hi: (W * L,)), then, for L = 1
    or 2, within each run by halving shifts (lo2, hi2: (W * L,) scratch), so that every step is a
    loop over whole rows, which compiles to vector code: about one read of the band's tags. Other
    L and a last partial run are reduced pixel by pixel.
    """
    h, w, dim = tag.shape[1], tag.shape[2], tag.shape[3]
    n = w * dim
    d1 = 1 if dim > 1 else 0
    rows = tag[jt].reshape(h, n)  # each row as one contiguous run of floats
    sb_cols = (n_chunks + SB_RUNS - 1) // SB_RUNS
    full = w // CHUNK
    m = full * CHUNK * dim  # floats in the full runs of a row
    halving = CHUNK == 16 and (dim == 1 or dim == 2) and full > 0
    y0 = band * SB_ROWS
    y1 = min(y0 + SB_ROWS, h)
    first = rows[y0]
    for f in range(n):
        lo[f] = first[f]
    for f in range(n):
        hi[f] = first[f]
    for y in range(y0 + 1, y1):
        row = rows[y]
        for f in range(n):
            v = row[f]
            lo[f] = v if v < lo[f] else lo[f]
        for f in range(n):
            v = row[f]
            hi[f] = v if v > hi[f] else hi[f]
    if halving:  # a run's CHUNK * L floats folded onto its first L (the shifts must be literals)
        if dim == 2:
            _shift_min(lo, lo2, m - 16, 16)
            _shift_min(lo2, lo, m - 24, 8)
            _shift_min(lo, lo2, m - 28, 4)
            _shift_min(lo2, lo, m - 30, 2)
            _shift_max(hi, hi2, m - 16, 16)
            _shift_max(hi2, hi, m - 24, 8)
            _shift_max(hi, hi2, m - 28, 4)
            _shift_max(hi2, hi, m - 30, 2)
        else:
            _shift_min(lo, lo2, m - 8, 8)
            _shift_min(lo2, lo, m - 12, 4)
            _shift_min(lo, lo2, m - 14, 2)
            _shift_min(lo2, lo, m - 15, 1)
            _shift_max(hi, hi2, m - 8, 8)
            _shift_max(hi2, hi, m - 12, 4)
            _shift_max(hi, hi2, m - 14, 2)
            _shift_max(hi2, hi, m - 15, 1)
    for c in range(n_chunks):
        x0 = c * CHUNK
        lo0 = lo[x0 * dim]
        hi0 = hi[x0 * dim]
        lo1 = lo[x0 * dim + d1]
        hi1 = hi[x0 * dim + d1]
        if not (halving and c < full):
            for x in range(x0 + 1, min(x0 + CHUNK, w)):
                t = lo[x * dim]
                lo0 = t if t < lo0 else lo0
                t = hi[x * dim]
                hi0 = t if t > hi0 else hi0
                t = lo[x * dim + d1]
                lo1 = t if t < lo1 else lo1
                t = hi[x * dim + d1]
                hi1 = t if t > hi1 else hi1
        t = band * n_chunks + c
        tile_box[t, 0] = lo0
        tile_box[t, 1] = hi0
        tile_box[t, 2] = lo1
        tile_box[t, 3] = hi1
        sb = band * sb_cols + c // SB_RUNS
        if c % SB_RUNS == 0:
            sb_box[sb, 0] = lo0
            sb_box[sb, 1] = hi0
            sb_box[sb, 2] = lo1
            sb_box[sb, 3] = hi1
        else:
            sb_box[sb, 0] = min(sb_box[sb, 0], lo0)
            sb_box[sb, 1] = max(sb_box[sb, 1], hi0)
            sb_box[sb, 2] = min(sb_box[sb, 2], lo1)
            sb_box[sb, 3] = max(sb_box[sb, 3], hi1)


@_inline
def _box_bound(top, box, r, mean, i):
    """Upper bound of M over a run or block: its maximum - round(distance from mean[i] to its tag
    box), the distance made a little smaller so that float rounding cannot make it exceed a
    pixel's."""
    d1 = 1 if mean.shape[1] > 1 else 0
    g0 = max(box[r, 0] - mean[i, 0], mean[i, 0] - box[r, 1], np.float32(0))
    g1 = max(box[r, 2] - mean[i, d1], mean[i, d1] - box[r, 3], np.float32(0)) if d1 else np.float32(0)
    return top - np.rint(np.sqrt(g0 * g0 + g1 * g1) * np.float32(0.9999))


@_inline
def _search_run(det, tag, j, jt, y, x0, x1, w, mean, selected, n_sel, best, arg, m):
    """Evaluate pixels x0..x1-1 of row y for the pairs selected[:n_sel] (those the run can reach):
    per pair, M of the run's pixels into m (a loop without branches, vector code for L = 1, 2),
    then its first maximum against the pair's best (ties to the lower index)."""
    dim = tag.shape[3]
    n = x1 - x0
    row = det[j, y]
    tags = tag[jt, y]
    for t in range(n_sel):
        i = selected[t]
        if dim == 1:
            m0 = mean[i, 0]
            for q in range(n):
                d = tags[x0 + q, 0] - m0
                m[q] = row[x0 + q] - np.rint(np.sqrt(d * d))
        elif dim == 2:
            m0 = mean[i, 0]
            m1 = mean[i, 1]
            for q in range(n):
                d = tags[x0 + q, 0] - m0
                e = tags[x0 + q, 1] - m1
                m[q] = row[x0 + q] - np.rint(np.sqrt(d * d + e * e))
        else:
            for q in range(n):
                m[q] = row[x0 + q] - _tag_cost(tag, jt, y, x0 + q, mean, i)
        top = m[0]
        at = 0
        for q in range(1, n):
            if m[q] > top:
                top = m[q]
                at = q
        p = y * w + x0 + at
        if top > best[i] or (top == best[i] and p < arg[i]):
            best[i] = top
            arg[i] = p


@_jit
def refine_argmax(det, tag, mean, pair_joint, chunk_max, strong_runs, strong_start, strong):
    """Per pair i: the first arg-max over joint pair_joint[i]'s map of det - round(||tag - mean[i]||).

    Since round(.) >= 0, M <= heatmap, and M <= the maximum of a set of pixels minus the rounded
    distance between the pair's mean and the box of their tags (first two components): pixels
    whose bound is below a pair's best M so far are never evaluated for it.

    1. The pairs of one joint go together through its strong runs (maximum > `strong`) by
       decreasing maximum (bucketed by a monotone quantisation of the maximum, so a lower bucket
       only holds lower maxima). After each bucket the pairs whose best is >= the smallest maximum
       in it are settled, and after the last one those whose best is > `strong`.
    2. The pairs left (a mean tag far from the tags of the strong pixels) visit the blocks by
       decreasing maximum and stop at the first block whose maximum is below their best; inside,
       they go tile by tile (SB_ROWS rows of one run) and run by run, skipping what the bounds
       rule out. The tags are read only where a pair enters: a band's block and tile boxes come
       from one vectorised pass over its rows when a pair first enters one of its blocks, the run
       boxes when it first enters a tile.

    Args:
        det: (K, H, W) float32; tag: (K or 1, H, W, L) float32 (one map shared by all joints);
        mean: (n, L) float32; pair_joint: (n,) int64; chunk_max, strong_runs, strong_start: from
        `nms_candidates` called with the same `strong`.

    Returns:
        (n,) int64 pixel index y * W + x.
    """
    k, h, w = det.shape
    n = mean.shape[0]
    n_chunks = chunk_max.shape[2]
    runs = h * n_chunks
    sb_cols = (n_chunks + SB_RUNS - 1) // SB_RUNS
    n_sb = ((h + SB_ROWS - 1) // SB_ROWS) * sb_cols
    shared = tag.shape[0] == 1
    best = np.full(n, -np.inf, dtype=np.float32)
    arg = np.full(n, h * w, dtype=np.int64)
    order = np.argsort(pair_joint, kind="mergesort")
    active = np.empty(n, dtype=np.int64)
    selected = np.empty(n, dtype=np.int64)
    max_strong = 0
    for j in range(k):
        max_strong = max(max_strong, strong_start[j + 1] - strong_start[j])
    n_buckets = max(min(max_strong // 4, 1024), 1)
    count = np.zeros(n_buckets, dtype=np.int64)
    start = np.zeros(n_buckets + 1, dtype=np.int64)
    fill = np.zeros(n_buckets, dtype=np.int64)
    bucket_min = np.empty(n_buckets, dtype=np.float32)
    sorted_runs = np.empty(max(max_strong, 1), dtype=np.int64)
    key = np.empty(max(max_strong, 1), dtype=np.int64)
    n_tiles = ((h + SB_ROWS - 1) // SB_ROWS) * n_chunks
    box = np.empty((runs, 4), dtype=np.float32)
    tile_box = np.empty((n_tiles, 4), dtype=np.float32)
    tile_max = np.empty(n_tiles, dtype=np.float32)
    tile_boxed = np.zeros(n_tiles, dtype=np.bool_)
    band_boxed = np.zeros((h + SB_ROWS - 1) // SB_ROWS, dtype=np.bool_)
    m_run = np.empty(CHUNK, dtype=np.float32)
    sb_box = np.empty((n_sb, 4), dtype=np.float32)
    sb_max = np.empty(n_sb, dtype=np.float32)
    scratch = np.empty((4, w * tag.shape[3]), dtype=np.float32)
    lo = 0
    while lo < n:
        j = pair_joint[order[lo]]
        hi = lo
        while hi < n and pair_joint[order[hi]] == j:
            hi += 1
        jt = 0 if shared else j
        n_active = hi - lo
        for t in range(n_active):
            active[t] = order[lo + t]
        maxima = chunk_max[j].reshape(runs)
        # 1. the strong runs by decreasing maximum (a counting sort on a monotone key)
        s0 = strong_start[j]
        n_runs = strong_start[j + 1] - s0
        if n_runs:
            v_lo = maxima[strong_runs[s0]]
            v_hi = v_lo
            for q in range(n_runs):
                v = maxima[strong_runs[s0 + q]]
                v_lo = min(v_lo, v)
                v_hi = max(v_hi, v)
            scale = (n_buckets - 0.5) / (np.float64(v_hi) - np.float64(v_lo)) if v_hi > v_lo else 0.0
            count[:] = 0
            for q in range(n_runs):
                b = min(int((np.float64(maxima[strong_runs[s0 + q]]) - np.float64(v_lo)) * scale), n_buckets - 1)
                key[q] = b
                count[b] += 1
            start[0] = 0
            for b in range(n_buckets):
                start[b + 1] = start[b] + count[b]
                fill[b] = start[b]
                bucket_min[b] = np.inf
            for q in range(n_runs):
                b = key[q]
                r = strong_runs[s0 + q]
                sorted_runs[fill[b]] = r
                fill[b] += 1
                bucket_min[b] = min(bucket_min[b], maxima[r])
            floor = np.float32(-np.inf)
            for b in range(n_buckets - 1, -1, -1):
                if count[b] == 0:
                    continue
                for q in range(start[b], start[b + 1]):
                    r = sorted_runs[q]
                    top = maxima[r]
                    if top < floor:
                        continue
                    y = r // n_chunks
                    x0 = (r - y * n_chunks) * CHUNK
                    x1 = min(x0 + CHUNK, w)
                    _one_box(tag, jt, y, x0, x1, r, box)
                    n_sel = 0
                    for t in range(n_active):
                        i = active[t]
                        if not top < best[i] and not _box_bound(top, box, r, mean, i) < best[i]:
                            selected[n_sel] = i
                            n_sel += 1
                    if n_sel:
                        _search_run(det, tag, j, jt, y, x0, x1, w, mean, selected, n_sel, best, arg, m_run)
                # every run left has a maximum < bucket_min[b] (and the weak ones <= strong)
                edge = bucket_min[b]
                kept = 0
                floor = np.float32(np.inf)
                for t in range(n_active):
                    i = active[t]
                    if not best[i] >= edge:
                        active[kept] = i
                        kept += 1
                        floor = min(floor, best[i])
                n_active = kept
                if n_active == 0:
                    break
        kept = 0
        for t in range(n_active):  # the runs not listed have maxima <= strong
            i = active[t]
            if not best[i] > strong:
                active[kept] = i
                kept += 1
        n_active = kept
        if n_active == 0:
            lo = hi
            continue
        # 2. the pairs left: the blocks by decreasing maximum until the rest cannot beat a pair's
        # best, skipping blocks, tiles and runs whose bounds rule them out; a band's tag boxes are
        # computed when a pair first enters one of its blocks, a tile's run boxes likewise
        _tile_maxima(maxima, h, n_chunks, tile_max, sb_max)
        sb_order = np.argsort(-sb_max, kind="mergesort")
        band_boxed[:] = False
        tile_boxed[:] = False
        for t in range(n_active):
            i = active[t]
            selected[0] = i
            for q in range(n_sb):
                sb = sb_order[q]
                if sb_max[sb] < best[i]:
                    break  # the blocks left have lower maxima
                band = sb // sb_cols
                if not band_boxed[band]:
                    _band_box(tag, jt, n_chunks, band, scratch[0], scratch[1], scratch[2], scratch[3], tile_box, sb_box)
                    band_boxed[band] = True
                if _box_bound(sb_max[sb], sb_box, sb, mean, i) < best[i]:
                    continue
                y0 = band * SB_ROWS
                y1 = min(y0 + SB_ROWS, h)
                c0 = (sb % sb_cols) * SB_RUNS
                for c in range(c0, min(c0 + SB_RUNS, n_chunks)):
                    tile = band * n_chunks + c
                    if tile_max[tile] < best[i] or _box_bound(tile_max[tile], tile_box, tile, mean, i) < best[i]:
                        continue
                    x0 = c * CHUNK
                    x1 = min(x0 + CHUNK, w)
                    if not tile_boxed[tile]:
                        for y in range(y0, y1):
                            _one_box(tag, jt, y, x0, x1, y * n_chunks + c, box)
                        tile_boxed[tile] = True
                    for y in range(y0, y1):
                        r = y * n_chunks + c
                        if maxima[r] < best[i] or _box_bound(maxima[r], box, r, mean, i) < best[i]:
                            continue
                        _search_run(det, tag, j, jt, y, x0, x1, w, mean, selected, 1, best, arg, m_run)
        lo = hi
    return arg


@_jit
def match_costs(joints, running, num_tags, grouped, use_val, width):
    """Matching costs of candidates against the first `grouped` persons (official float64 maths).

    Person tag = running sum / count in float32 (np.mean of its float32 tags); D = the L2
    distance in float64, summed left to right over the L < 8 components (as np.linalg.norm for a
    short axis); cost = round(D) * 100 - value (use_val) or D, padded with 1e10 columns.

    Args:
        joints: (A, 3 + L) float64 candidate rows [x, y, value, tag...].
        running: (cap, L) float32 tag sums; num_tags: (cap,) int64.
        width: number of cost columns (>= grouped).

    Returns:
        cost (A, width) float64, dist (A, grouped) float64.
    """
    a = joints.shape[0]
    dim = joints.shape[1] - 3
    cost = np.full((a, width), 1e10)
    dist = np.empty((a, grouped))
    mean = np.empty(dim, dtype=np.float32)
    for g in range(grouped):
        count = np.float32(num_tags[g])
        for c in range(dim):
            mean[c] = running[g, c] / count
        for r in range(a):
            d = joints[r, 3] - np.float64(mean[0])
            total = d * d
            for c in range(1, dim):
                d = joints[r, 3 + c] - np.float64(mean[c])
                total += d * d
            dd = np.sqrt(total)
            dist[r, g] = dd
            cost[r, g] = np.rint(dd) * 100.0 - joints[r, 2] if use_val else dd
    return cost, dist


@_inline
def _add_tag(running, partial, num_tags, p, tags, q):
    """Append tags[q] to person p, keeping running[p] equal to numpy's sum of the person's tags:
    row by row for L >= 2; for L = 1 numpy's pairwise scheme (8 partial sums from the 8th term on,
    combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the remaining terms one
    by one)."""
    dim = tags.shape[1]
    t = num_tags[p]
    if dim == 1:
        if t < 8:
            partial[p, t] = tags[q, 0]
        else:
            partial[p, t % 8] += tags[q, 0]
    for c in range(dim):
        running[p, c] += tags[q, c]
    if dim == 1 and (t + 1) % 8 == 0:
        r = partial[p]
        running[p, 0] = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    num_tags[p] = t + 1


@_jit
def add_tags(running, partial, num_tags, persons, tags):
    """`_add_tag` of tags[q] to person persons[q], for distinct persons."""
    for q in range(persons.size):
        _add_tag(running, partial, num_tags, persons[q], tags, q)


@_jit
def commit_joint(
    people, running, partial, num_tags, keys, count, joint, joints, tags, person, dist, grouped, tag_threshold
):
    """One joint type of the official matching after the Hungarian step, unless keys collide.

    A candidate joins its assigned person if that is one of the `grouped` persons and the tag
    distance is < tag_threshold; the others open new persons keyed by their first tag component.
    If such a key equals an existing key (or another new one), nothing is changed and -1 is
    returned: the official dict semantics then need the per-row path.

    Args:
        people: (cap, K, 3 + L) float64 joints of the persons; running, partial, num_tags: their
            tag sums (see `_add_tag`); keys: (cap,) float32; count: persons so far.
        joints: (A, 3 + L) float64 candidate rows; tags: (A, L) float32; person: (A,) int64
            assigned column; dist: (A, grouped) float64.

    Returns:
        (new count or -1, accepted (A,) bool).
    """
    a = joints.shape[0]
    accepted = np.zeros(a, dtype=np.bool_)
    for r in range(a):
        p = person[r]
        accepted[r] = grouped > 0 and p < grouped and dist[r, p] < tag_threshold
    for r in range(a):
        if accepted[r]:
            continue
        key = tags[r, 0]
        for q in range(count):
            if keys[q] == key:
                return -1, accepted
        for r2 in range(r):
            if not accepted[r2] and tags[r2, 0] == key:
                return -1, accepted
    for r in range(a):
        p = person[r] if accepted[r] else count
        for c in range(joints.shape[1]):
            people[p, joint, c] = joints[r, c]
        _add_tag(running, partial, num_tags, p, tags, r)
        if not accepted[r]:
            keys[count] = tags[r, 0]
            count += 1
    return count, accepted


@_inline
def _int_coord(v, size):
    """int(v) (truncation, as the official int casts) as an index into an axis of `size`, negative
    values wrapping as numpy indexing does; -1 if it is outside [-size, size)."""
    i = int(v)
    if i < -size or i >= size:
        return -1
    return i + size if i < 0 else i


@_inline
def _quarter(det, j, y, x):
    """Official quarter offset at integer (x, y) of map j: +-0.25 per axis towards the larger
    neighbour (strict '>', neighbours clamped at the border) -> (dx, dy)."""
    h, w = det.shape[1], det.shape[2]
    dx = 0.25 if det[j, y, min(x + 1, w - 1)] > det[j, y, max(x - 1, 0)] else -0.25
    dy = 0.25 if det[j, min(y + 1, h - 1), x] > det[j, max(y - 1, 0), x] else -0.25
    return dx, dy


@_jit
def adjust_joints(people, det):
    """Official adjust in place: every detected joint (value > 0) of people (P, K, 3 + L) float32
    moves by the quarter offset at its integer position, then + 0.5 on both axes.

    Returns False (and changes nothing) if a detected joint lies outside the (K, H, W) maps.
    """
    h, w = det.shape[1], det.shape[2]
    for p in range(people.shape[0]):
        for j in range(people.shape[1]):
            if people[p, j, 2] > 0 and not (0 <= int(people[p, j, 0]) < w and 0 <= int(people[p, j, 1]) < h):
                return False
    for p in range(people.shape[0]):
        for j in range(people.shape[1]):
            if people[p, j, 2] > 0:
                x = int(people[p, j, 0])
                y = int(people[p, j, 1])
                dx, dy = _quarter(det, j, y, x)
                people[p, j, 0] = np.float64(x) + dx + 0.5
                people[p, j, 1] = np.float64(y) + dy + 0.5
    return True


@_jit
def person_mean_tags(people, tag):
    """(P, L) float32 mean tag of each person's detected joints (value > 0), read from the tag maps
    (K or 1 shared, H, W, L) at the integer part of their coordinates, bit-identical to the
    official np.mean of the person's tag list (summed as `_add_tag` does; valid up to 128 joints).
    Persons without detected joints get zeros. Raises IndexError for a joint outside the maps."""
    n, k = people.shape[0], people.shape[1]
    h, w, dim = tag.shape[1], tag.shape[2], tag.shape[3]
    shared = tag.shape[0] == 1
    running = np.zeros((n, dim), dtype=np.float32)
    partial = np.zeros((n, 8), dtype=np.float32)
    num_tags = np.zeros(n, dtype=np.int64)
    one = np.empty((1, dim), dtype=np.float32)
    for p in range(n):
        for j in range(k):
            if people[p, j, 2] > 0:
                x = _int_coord(people[p, j, 0], w)
                y = _int_coord(people[p, j, 1], h)
                if x < 0 or y < 0:
                    raise IndexError("detected joint outside the tag maps")
                jt = 0 if shared else j
                for c in range(dim):
                    one[0, c] = tag[jt, y, x, c]
                _add_tag(running, partial, num_tags, p, one, 0)
    means = np.zeros((n, dim), dtype=np.float32)
    for p in range(n):
        if num_tags[p]:
            count = np.float32(num_tags[p])
            for c in range(dim):
                means[p, c] = running[p, c] / count
    return means


@_jit
def fill_refined(people, det, pair_person, pair_joint, flat_pos):
    """Refine's write-back in place: pair i (person, joint) takes the heatmap value at flat_pos[i]
    (y * W + x) and, when it is > 0, the position x + 0.5 + dx, y + 0.5 + dy (quarter offset)."""
    w = det.shape[2]
    for i in range(flat_pos.shape[0]):
        j = pair_joint[i]
        y = flat_pos[i] // w
        x = flat_pos[i] - y * w
        value = det[j, y, x]
        if value > 0:
            dx, dy = _quarter(det, j, y, x)
            p = pair_person[i]
            people[p, j, 0] = np.float64(x) + 0.5 + dx
            people[p, j, 1] = np.float64(y) + 0.5 + dy
            people[p, j, 2] = value
