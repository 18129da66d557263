"""Coreset selection under label noise: Prune4ReL (Park et al., NeurIPS 2023).

"Robust Data Pruning under Label Noise via Maximizing Re-labeling Accuracy" keeps the
examples whose neighbourhoods are most confidently predicted, because a re-labeling
learner trained on the coreset fixes a noisy label from the confident neighbours of
the example. With normalised embeddings e(x) and a per-example confidence c(x):

- similarity        s(x, x') = 0.5 + 0.5 cos(e(x), e(x'))
- neighbour weight  w(x, x') = s(x, x') 1[s(x, x') > tau]
- neighbourhood confidence given the selected set S: N(x) = sum_{q in S} w(x, q) c(q)
- objective         F(S) = sum_x tanh(N(x) / eta), monotone and submodular.

`prune4rel` selects greedily. `gain="self"` scores a candidate p by its own term only,
tanh((N(p) + c(p))/eta) - tanh(N(p)/eta), as the authors' code does; `gain="full"`
by the true marginal gain F(S + p) - F(S). Ties go to the lowest index.

Why it is lazy, and why that is exact. The plain greedy (the authors' loop) adds one
similarity row over all n examples per pick: 1e5 picks at n = 1e6, d = 128 are
1.3e13 multiply-adds read through memory (measured here: 10 ms per step at n = 1e5,
so about 3 hours at n = 1e6 on a 2-core CPU). Both gains only shrink as S grows (N(x)
never decreases since w, c >= 0, and tanh is concave), so a stale gain is an upper
bound and a lazy priority queue is exact: the candidate on top is re-scored, and
picked once its fresh score is still on top. For `gain="self"` re-scoring p only
needs N(p), i.e. the similarities of p to the picks made since p was last scored (no
row over all n); within a step the stale candidates are re-scored in batches that
double from 1, so that many re-scorings become one matrix product. For `gain="full"`
N is kept exact for every example (one row per pick) and re-scoring a candidate takes
one row; the initial gains take one pass over all pairs of neighbours.

Why anchors. A row or a re-scoring only needs pairs with s > tau, i.e. within the
angle theta = arccos(2 tau - 1). Vectors are bucketed by their nearest of K anchor
directions (a few spherical k-means steps); by the triangle inequality on angles, a
bucket whose anchor is farther than theta + (the bucket's radius) from a query holds
no neighbour of it and is skipped. The skip test has a safety margin well above the
rounding error of the dot products, so it never changes a result, only the time: on
clustered embeddings (the usual case) most buckets are skipped, on structureless
ones nothing is, and the cost falls back to the lazy greedy's.

Numerics. Similarities are computed in float64 when the embeddings are float64 and
in float32 otherwise (half the memory and twice the speed at 1e6 x 128); N and the
gains are float64. tanh(a + b) - tanh(a) is evaluated in a form that does not cancel
(the self gain in log space), so greedy choices stay meaningful after tanh saturates:
the plain difference is exactly 0 once N/eta exceeds about 9 in float32 (19 in
float64), after which every pick would fall to the index order (the authors' code
marks this saturation as a known problem). The products are NumPy's, on one BLAS thread
during the greedy loop: they are many and small (a few candidates against a bucket
of picks), the buckets' varying sizes would make a jit-compiled JAX function
recompile, and on this CPU NumPy's matmul also beat XLA's (27 vs 18 GFLOP/s at
256 x 50,000 x 128).

Memory is O(n d): one normalised copy of the embeddings (two with `gain="full"`, whose
index keeps a bucket-ordered copy), the picks, and O(n) bookkeeping; no n x n matrix
and no full similarity row is ever held.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np

__all__ = ["objective", "prune4rel"]

_log = logging.getLogger(__name__)

# Most stale candidates re-scored together in one matrix product (gain="self"). Within
# a step the batch doubles from 1 up to this: a step that needs one re-scoring does
# one, a step that needs many gets them in a few matrix products, and at most twice
# as many candidates are re-scored as the lazy greedy strictly needs.
_REFRESH_BATCH = 1024
# The same cap for gain="full", where each re-scoring is a query over all examples.
_FULL_BATCH = 64
# A stale candidate behind by at most this many picks is brought up to date directly
# against those picks, which is cheaper than an index query.
_DIRECT_LAG = 512
# Rows of queries per block when every example is scored (initial full gains, objective).
_QUERY_BLOCK = 2048
# Margin on the cosine below which an anchor test may skip a bucket: far above the
# rounding error of the products (about d * eps * |x| |y|), so skipping is exact.
_SKIP_MARGIN = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


# --------------------------------------------------------------------------- checks


def _as_embeddings(embeddings: object) -> np.ndarray:
    """Returns the embeddings L2-normalised, float64 if given so, else float32."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[1] == 0:
        raise ValueError(f"embeddings must be a 2-D (n, d) array with d >= 1, got {emb.shape}")
    if not (np.issubdtype(emb.dtype, np.floating) or np.issubdtype(emb.dtype, np.integer)):
        raise ValueError(f"embeddings must hold real numbers, got dtype {emb.dtype}")
    dtype = np.float64 if emb.dtype == np.float64 else np.float32
    emb = emb.astype(dtype, copy=True)
    if not np.all(np.isfinite(emb)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(emb), axis=1)))
        raise ValueError(f"embeddings contain non-finite values (NaN or inf) in {bad} rows")
    # Norms in float64: squares of large float32 entries would overflow.
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))
    if np.any(norms == 0):
        bad = np.flatnonzero(norms == 0)
        raise ValueError(
            f"{bad.size} embeddings are zero vectors (e.g. row {bad[0]}): cosine similarity "
            "is undefined for them"
        )
    emb /= norms[:, None].astype(dtype)
    return emb


def _as_confidence(confidence: object, n: int) -> np.ndarray:
    """Returns the confidences as float64 after checking length, finiteness and sign."""
    conf = np.asarray(confidence)
    if conf.ndim != 1:
        raise ValueError(f"confidence must be a 1-D array, got shape {conf.shape}")
    if conf.shape[0] != n:
        raise ValueError(
            f"confidence has {conf.shape[0]} entries but embeddings have {n} rows; "
            "inputs must have the same length"
        )
    if not (np.issubdtype(conf.dtype, np.floating) or np.issubdtype(conf.dtype, np.integer)):
        raise ValueError(f"confidence must hold real numbers, got dtype {conf.dtype}")
    conf = conf.astype(np.float64)
    if not np.all(np.isfinite(conf)):
        bad = int(np.count_nonzero(~np.isfinite(conf)))
        raise ValueError(f"confidence contains {bad} non-finite values (NaN or inf)")
    if np.any(conf < 0):
        # N(x) must not decrease as picks are added: that is what makes F monotone and
        # the lazy (stale upper bound) greedy exact.
        raise ValueError(f"confidence must be >= 0, got a minimum of {conf.min()}")
    return conf


def _check_tau_eta(tau: float, eta: float) -> tuple[float, float]:
    """Returns tau and eta as floats after checking 0 <= tau <= 1 and 0 < eta < inf."""
    tau, eta = float(tau), float(eta)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1] (a threshold on s = 0.5 + 0.5 cos), got {tau}")
    if not (eta > 0.0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number > 0, got {eta}")
    return tau, eta


# --------------------------------------------------------------------------- gains


def _tanh_increment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tanh(a + b) - tanh(a) for a, b >= 0, without the cancellation of the difference.

    With u = exp(-2a), v = exp(-2(a + b)): tanh(a + b) - tanh(a) = 2(u - v) / ((1 + u)(1 + v))
    and u - v = -u expm1(-2b), so every operation is accurate to a few ulps; the value
    only underflows to 0 for a > ~370, where its share of a sum is below 1e-300.
    """
    u = np.exp(-2.0 * a)
    v = np.exp(-2.0 * (a + b))
    return -2.0 * u * np.expm1(-2.0 * b) / ((1.0 + u) * (1.0 + v))


def _log_self_gain(n_over_eta: np.ndarray, c_over_eta: np.ndarray) -> np.ndarray:
    """log(tanh(a + b) - tanh(a)) for a = N/eta, b = c/eta >= 0; -inf where b = 0.

    The log of `_tanh_increment`: it never underflows, so candidates stay ordered by
    their self gain however saturated their neighbourhoods are.
    """
    a, b = n_over_eta, c_over_eta
    with np.errstate(divide="ignore"):
        log_rise = np.log(-np.expm1(-2.0 * b))
    return (
        math.log(2.0)
        - 2.0 * a
        + log_rise
        - np.log1p(np.exp(-2.0 * a))
        - np.log1p(np.exp(-2.0 * (a + b)))
    )


# --------------------------------------------------------------------------- anchor index


def _spherical_kmeans(points: np.ndarray, k: int, iters: int = 4) -> np.ndarray:
    """K unit anchor directions from a few spherical k-means steps on a fixed sample.

    Anchors only decide which buckets the exact range queries may skip, so a rough
    clustering is enough; the fixed seed keeps the run-time reproducible.
    """
    rng = np.random.default_rng(0)
    n = points.shape[0]
    sample = points[np.sort(rng.choice(n, size=min(n, 32 * k), replace=False))]
    sample = sample.astype(np.float64)
    sample /= np.linalg.norm(sample, axis=1, keepdims=True)
    k = min(k, sample.shape[0])
    anchors = sample[rng.choice(sample.shape[0], size=k, replace=False)].copy()
    for _ in range(iters):
        assign = np.argmax(sample @ anchors.T, axis=1)
        sums = np.zeros_like(anchors)
        np.add.at(sums, assign, sample)
        norms = np.linalg.norm(sums, axis=1)
        ok = norms > 1e-12  # an empty (or cancelling) cluster keeps its anchor
        anchors[ok] = sums[ok] / norms[ok, None]
    return anchors


def _num_anchors(n_items: int) -> int:
    """Anchors for an index of `n_items` vectors: ~sqrt(n)/2, between 1 and 512.

    More anchors mean tighter buckets but a longer Python loop per query batch.
    """
    return int(np.clip(round(math.sqrt(n_items) / 2), 1, 512))


class _AnchorIndex:
    """Unit vectors bucketed by their nearest anchor, for exact queries of s > tau.

    Items are appended with increasing integer ids (an example's index, or a pick's
    time); a query can ask, per query row, only for items with id >= a minimum, which
    is how a stale candidate catches up on the picks made since it was last scored.
    """

    def __init__(self, anchors: np.ndarray, dtype: np.dtype, tau: float) -> None:
        self.anchors = anchors  # (K, d) float64, unit rows
        self.dtype = np.dtype(dtype)
        self.tau = tau
        k, d = anchors.shape
        self.vecs = [np.empty((0, d), self.dtype) for _ in range(k)]
        self.ids = [np.empty(0, np.int64) for _ in range(k)]
        self.count = np.zeros(k, np.int64)
        self.radius = np.zeros(k)  # max angle from an item of the bucket to its anchor
        self.last_id = np.full(k, -1, np.int64)
        cos_tau = 2.0 * tau - 1.0
        # Every item of a bucket whose anchor is at an angle > theta_skip + radius from
        # a query is at an angle > theta_skip from it (triangle inequality), i.e. has a
        # cosine < cos_tau - margin: its computed s cannot exceed tau. The test runs in
        # cosine space (no arccos, ill-conditioned near 0), on float64 cosines to the
        # anchors, whose rounding (~1e-14) the 1e-12 below covers.
        margin = _SKIP_MARGIN[self.dtype]
        self.theta_skip = math.acos(min(1.0, max(-1.0, cos_tau - margin)))
        self.cos_limit = np.zeros(k)
        self._set_limits(np.arange(k))
        # Cheap pre-filter on the raw products, below the exact test s > tau.
        self.cos_lo = cos_tau - 1e-5

    def _set_limits(self, buckets: np.ndarray) -> None:
        """Cosine to the anchor below which a query can skip the bucket."""
        angle = np.minimum(self.theta_skip + self.radius[buckets], math.pi)
        self.cos_limit[buckets] = np.cos(angle) - 1e-12

    def _anchor_cos(self, x: np.ndarray) -> np.ndarray:
        """float64 cosines from the rows of `x` to every anchor."""
        x64 = x.astype(np.float64)
        x64 /= np.linalg.norm(x64, axis=1, keepdims=True)
        return x64 @ self.anchors.T

    def hits(self, q: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of q, row of vecs, s) of the pairs with s > tau, s as float64.

        s is computed as 0.5 + 0.5 cos in the compute dtype and compared with tau there,
        exactly as the definition reads; the raw pre-filter only saves that work on
        the pairs that are far below the threshold.
        """
        cos = q @ vecs.T
        r, c = np.nonzero(cos > self.cos_lo)
        s = 0.5 + 0.5 * cos[r, c]
        keep = s > self.tau
        return r[keep], c[keep], s[keep].astype(np.float64)

    def add(self, vecs: np.ndarray, ids: np.ndarray) -> None:
        """Appends unit vectors (compute dtype) with ids larger than any added before."""
        x64 = vecs.astype(np.float64)
        x64 /= np.linalg.norm(x64, axis=1, keepdims=True)
        bucket = np.argmax(x64 @ self.anchors.T, axis=1)
        chord = np.linalg.norm(x64 - self.anchors[bucket], axis=1)
        angle = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
        order = np.argsort(bucket, kind="stable")
        bounds = np.flatnonzero(np.diff(bucket[order])) + 1
        for grp in np.split(order, bounds):
            if grp.size == 0:
                continue
            b = int(bucket[grp[0]])
            cnt, new = int(self.count[b]), grp.size
            if cnt + new > self.vecs[b].shape[0]:  # grow geometrically: amortised O(1)
                cap = max(cnt + new, 2 * self.vecs[b].shape[0], 8)
                grown = np.empty((cap, vecs.shape[1]), self.dtype)
                grown[:cnt] = self.vecs[b][:cnt]
                self.vecs[b] = grown
                grown_ids = np.empty(cap, np.int64)
                grown_ids[:cnt] = self.ids[b][:cnt]
                self.ids[b] = grown_ids
            self.vecs[b][cnt : cnt + new] = vecs[grp]
            self.ids[b][cnt : cnt + new] = ids[grp]
            self.count[b] = cnt + new
            self.radius[b] = max(self.radius[b], float(angle[grp].max()))
            self.last_id[b] = ids[grp[-1]]
            self._set_limits(np.array([b]))

    def query(
        self, q: np.ndarray, min_id: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields (query rows, item ids, s) for every pair with s > tau, bucket by bucket.

        `q` holds unit vectors in the compute dtype; with `min_id`, only items whose
        id is >= min_id[row] are reported for that row.
        """
        need = (self._anchor_cos(q) >= self.cos_limit[None, :]) & (self.count > 0)
        if min_id is not None:
            need &= self.last_id[None, :] >= min_id[:, None]
        for b in np.flatnonzero(need.any(axis=0)):
            rows = np.flatnonzero(need[:, b])
            vecs = self.vecs[b][: self.count[b]]
            ids = self.ids[b][: self.count[b]]
            if min_id is not None:
                start = int(np.searchsorted(ids, min_id[rows].min()))
                vecs, ids = vecs[start:], ids[start:]
            r, c, s = self.hits(q if rows.size == q.shape[0] else q[rows], vecs)
            r, c = rows[r], ids[c]
            if min_id is not None:
                keep = c >= min_id[r]
                r, c, s = r[keep], c[keep], s[keep]
            if r.size:
                yield r, c, s


def _build_index(
    emb: np.ndarray, tau: float, n_items: int, ids: np.ndarray | None = None
) -> _AnchorIndex:
    """An anchor index with anchors fitted on `emb`, filled with emb[ids] when given."""
    index = _AnchorIndex(_spherical_kmeans(emb, _num_anchors(n_items)), emb.dtype, tau)
    if ids is not None:
        for start in range(0, ids.size, 1 << 16):
            chunk = ids[start : start + (1 << 16)]
            index.add(emb[chunk], chunk)
    return index


# --------------------------------------------------------------------------- lazy greedy


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limits BLAS to one thread (via threadpoolctl, when installed) for the greedy loop.

    Its products are small and many (a few candidates against a bucket of picks);
    waking a BLAS thread pool for each costs more than it saves: measured 1.8x faster
    single-threaded on a 2-core machine.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up: the results do not depend on it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class _ClassQueue:
    """Max-queue of one class's candidates, keyed by (score, -index).

    Candidates never re-scored stay in an array pre-sorted by their initial score;
    re-scored ones move to a heap. This keeps the heap small and the start O(n log n)
    in NumPy rather than a heap of a million Python tuples.
    """

    def __init__(self, members: np.ndarray, key0: np.ndarray) -> None:
        self.order = members[np.lexsort((members, -key0[members]))]
        self.neg_key0 = -key0[self.order]
        self.ptr = 0
        self.heap: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return self.order.size - self.ptr + len(self.heap)

    def peek(self) -> int:
        """Index of the top candidate (the queue must be non-empty)."""
        if self.ptr < self.order.size:
            front = (float(self.neg_key0[self.ptr]), int(self.order[self.ptr]))
            if not self.heap or front < self.heap[0]:
                return front[1]
        return self.heap[0][1]

    def pop(self) -> int:
        """Removes and returns the top candidate."""
        if self.ptr < self.order.size:
            front = (float(self.neg_key0[self.ptr]), int(self.order[self.ptr]))
            if not self.heap or front < self.heap[0]:
                self.ptr += 1
                return front[1]
        return heapq.heappop(self.heap)[1]

    def push(self, idx: np.ndarray, keys: np.ndarray) -> None:
        for i, k in zip(idx.tolist(), keys.tolist(), strict=True):
            heapq.heappush(self.heap, (-k, i))


def _class_groups(labels: object, n: int, balance: bool) -> list[np.ndarray]:
    """Member indices of each sorted distinct label (one group of all when not balanced)."""
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(
            f"labels must be a 1-D array with one entry per embedding ({n}), got shape "
            f"{lab.shape}; inputs must have the same length"
        )
    if not balance:
        return [np.arange(n)]
    _, inverse = np.unique(lab, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return [g for g in np.split(order, bounds) if g.size]


def _lazy_greedy(
    key0: np.ndarray,
    groups: Sequence[np.ndarray],
    budget: int,
    rescore: Callable[[np.ndarray, int], np.ndarray],
    on_pick: Callable[[int, int], None],
    batch: int,
) -> np.ndarray:
    """Greedy picks by lazily re-scored upper bounds, round-robin over `groups`.

    key0 are the exact scores before any pick (higher is better). rescore(idx, t)
    returns the exact scores of idx after the first t picks; on_pick(p, t) records
    the t-th pick. A candidate is picked when it is on top of its class's queue with
    a score exact at the current step: every other bound is then no higher, and ties
    were ordered by index, so it is the lowest-index argmax of the exact scores.
    Step i serves the class after the one served at step i - 1 (class 0 first),
    skipping classes with no candidates left; this is class i mod C until a class
    runs out, and keeps the per-class counts within one of each other afterwards.
    """
    n = key0.size
    stamp = np.zeros(n, np.int64)  # the step at which each candidate's score is exact
    queues = [_ClassQueue(g, key0) for g in groups]
    picks = np.empty(budget, np.int64)
    cls = -1
    log_every = max(1, budget // 10)
    for t in range(budget):
        cls = (cls + 1) % len(queues)
        while not len(queues[cls]):
            cls = (cls + 1) % len(queues)
        queue = queues[cls]
        size = 1
        while stamp[queue.peek()] != t:
            stale = []
            while len(stale) < size and len(queue) and stamp[queue.peek()] != t:
                stale.append(queue.pop())
            idx = np.asarray(stale, np.int64)
            keys = rescore(idx, t)
            stamp[idx] = t
            queue.push(idx, keys)
            size = min(2 * size, batch)
        p = queue.pop()
        picks[t] = p
        on_pick(p, t)
        if (t + 1) % log_every == 0:
            _log.info("prune4rel: %d / %d picks", t + 1, budget)
    return picks


class _SelfGain:
    """Scores of gain="self": log(tanh((N(p) + c(p))/eta) - tanh(N(p)/eta)).

    N(p) is only brought up to date when p is re-scored, from p's similarities to the
    picks made since its last scoring: directly against those picks when they are few
    (the common case of a candidate re-scored a few steps ago), else through an anchor
    index of the picks keyed by pick time.
    """

    def __init__(
        self, emb: np.ndarray, conf: np.ndarray, budget: int, tau: float, eta: float
    ) -> None:
        self.emb, self.conf, self.eta = emb, conf, eta
        self.nconf = np.zeros(emb.shape[0])  # N(x), exact up to `since`
        self.since = np.zeros(emb.shape[0], np.int64)
        self.pick_conf = np.empty(budget)
        self.pick_emb = np.empty((budget, emb.shape[1]), emb.dtype)  # in pick order
        self.picks = _build_index(emb, tau, budget)

    def initial(self) -> np.ndarray:
        return _log_self_gain(np.zeros_like(self.conf), self.conf / self.eta)

    def rescore(self, idx: np.ndarray, t: int) -> np.ndarray:
        add = np.zeros(idx.size)
        since = self.since[idx]
        recent = t - since <= _DIRECT_LAG
        if recent.any():
            rows = np.flatnonzero(recent)
            lo = int(since[rows].min())
            r, c, s = self.picks.hits(self.emb[idx[rows]], self.pick_emb[lo:t])
            keep = c + lo >= since[rows[r]]
            r, c, s = rows[r[keep]], c[keep] + lo, s[keep]
            add += np.bincount(r, weights=s * self.pick_conf[c], minlength=idx.size)
        if not recent.all():
            rows = np.flatnonzero(~recent)
            for r, times, s in self.picks.query(self.emb[idx[rows]], min_id=since[rows]):
                add += np.bincount(rows[r], weights=s * self.pick_conf[times], minlength=idx.size)
        self.nconf[idx] += add
        self.since[idx] = t
        return _log_self_gain(self.nconf[idx] / self.eta, self.conf[idx] / self.eta)

    def on_pick(self, p: int, t: int) -> None:
        self.pick_conf[t] = self.conf[p]
        self.pick_emb[t] = self.emb[p]
        self.picks.add(self.emb[p : p + 1], np.array([t]))


class _FullGain:
    """Scores of gain="full": F(S + p) - F(S) = sum_x tanh((N(x) + w(x,p)c(p))/eta) - ...

    N is exact for every example (updated with one row per pick); a row is the set of
    neighbours of one example, found through an anchor index over all examples. The
    row of the best candidate re-scored at the current step is kept, since that is
    the candidate picked next unless a better one turns up.
    """

    def __init__(self, emb: np.ndarray, conf: np.ndarray, tau: float, eta: float) -> None:
        self.emb, self.conf, self.eta = emb, conf, eta
        self.nconf = np.zeros(emb.shape[0])
        self.index = _build_index(emb, tau, emb.shape[0], np.arange(emb.shape[0]))
        self.cached: tuple[int, int, float, np.ndarray, np.ndarray] | None = None

    def _rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = list(self.index.query(self.emb[idx]))
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        return tuple(np.concatenate(z) for z in zip(*parts, strict=True))

    def _gains(self, idx: np.ndarray) -> np.ndarray:
        gains = np.zeros(idx.size)
        for rows, xs, s in self.index.query(self.emb[idx]):
            inc = _tanh_increment(self.nconf[xs] / self.eta, s * self.conf[idx[rows]] / self.eta)
            gains += np.bincount(rows, weights=inc, minlength=idx.size)
        return gains

    def initial(self) -> np.ndarray:
        n = self.emb.shape[0]
        return np.concatenate(
            [self._gains(np.arange(i, min(n, i + _QUERY_BLOCK))) for i in range(0, n, _QUERY_BLOCK)]
        )

    def rescore(self, idx: np.ndarray, t: int) -> np.ndarray:
        rows, xs, s = self._rows(idx)
        inc = _tanh_increment(self.nconf[xs] / self.eta, s * self.conf[idx[rows]] / self.eta)
        gains = np.bincount(rows, weights=inc, minlength=idx.size)
        best = int(np.lexsort((idx, -gains))[0])
        cached = self.cached
        if cached is None or cached[0] != t or (-gains[best], idx[best]) < (-cached[2], cached[1]):
            keep = rows == best
            self.cached = (t, int(idx[best]), float(gains[best]), xs[keep], s[keep])
        return gains

    def on_pick(self, p: int, t: int) -> None:
        if self.cached is not None and self.cached[:2] == (t, p):
            xs, s = self.cached[3], self.cached[4]
        else:
            _, xs, s = self._rows(np.array([p]))
        self.cached = None
        np.add.at(self.nconf, xs, s * self.conf[p])


def prune4rel(
    embeddings: np.ndarray,
    confidence: np.ndarray,
    labels: np.ndarray,
    budget: int,
    *,
    tau: float = 0.95,
    eta: float = 1.0,
    balance: bool = True,
    gain: Literal["self", "full"] = "self",
) -> np.ndarray:
    """Selects `budget` examples by Prune4ReL's greedy; returns their indices in pick order.

    Args:
      embeddings: (n, d) features; only their directions matter (cosine similarity).
        float64 input is computed in float64, anything else in float32.
      confidence: (n,) confidence >= 0 of each example's (re-)label, e.g. the max
        softmax probability of a re-labeling model.
      labels: (n,) (noisy) labels; classes are their sorted distinct values.
      budget: number of examples to select, 0 <= budget <= n.
      tau: neighbour threshold on s = 0.5 + 0.5 cos, in [0, 1].
      eta: temperature of the tanh utility, > 0.
      balance: round-robin over classes: step i picks from class i mod C, skipping
        classes that have run out (the cycle continues over the others, so counts of
        the classes left stay within one of each other).
      gain: "self" (the candidate's own term, as the authors' code) or "full" (the true
        marginal gain of F).

    Returns:
      int64 array of `budget` distinct indices, in the order picked. Ties in the gain
      go to the lowest index.

    Raises:
      ValueError: on inputs of mismatched lengths, a budget outside [0, n], non-finite
        or zero embeddings, non-finite or negative confidences, an unknown gain, tau
        outside [0, 1], or eta <= 0.
    """
    emb = _as_embeddings(embeddings)
    n = emb.shape[0]
    conf = _as_confidence(confidence, n)
    groups = _class_groups(labels, n, balance)
    try:
        budget = operator.index(budget)
    except TypeError:
        raise ValueError(f"budget must be an integer count, got {budget!r}") from None
    if not 0 <= budget <= n:
        raise ValueError(f"budget must lie in [0, n] = [0, {n}], got {budget}")
    if gain not in ("self", "full"):
        raise ValueError(f"unknown gain {gain!r}: expected 'self' or 'full'")
    tau, eta = _check_tau_eta(tau, eta)
    if budget == 0:
        return np.empty(0, np.int64)

    if gain == "self":
        scorer: _SelfGain | _FullGain = _SelfGain(emb, conf, budget, tau, eta)
        batch = _REFRESH_BATCH
    else:
        scorer = _FullGain(emb, conf, tau, eta)
        batch = _FULL_BATCH
    key0 = scorer.initial()
    with _one_blas_thread():
        return _lazy_greedy(key0, groups, budget, scorer.rescore, scorer.on_pick, batch)


def objective(
    embeddings: np.ndarray,
    confidence: np.ndarray,
    indices: np.ndarray,
    *,
    tau: float,
    eta: float,
) -> float:
    """F(S) = sum over all examples x of tanh(N(x)/eta), N(x) = sum_{q in S} w(x, q) c(q).

    The quantity Prune4ReL maximises (an estimate of the re-labeling accuracy the
    coreset S = `indices` affords), computed by blocks of examples against an anchor
    index of S: O(n d) memory. Same conventions and checks as `prune4rel`; `indices`
    must be distinct.
    """
    emb = _as_embeddings(embeddings)
    n = emb.shape[0]
    conf = _as_confidence(confidence, n)
    tau, eta = _check_tau_eta(tau, eta)
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n}), got range [{idx.min()}, {idx.max()}]")
    if np.unique(idx).size != idx.size:
        raise ValueError("indices must be distinct (S is a set)")
    if idx.size == 0:
        return 0.0
    index = _build_index(emb[idx], tau, idx.size, np.arange(idx.size))
    sel_conf = conf[idx]
    total = 0.0
    for start in range(0, n, _QUERY_BLOCK):
        block = emb[start : start + _QUERY_BLOCK]
        nconf = np.zeros(block.shape[0])
        for rows, picks, s in index.query(block):
            nconf += np.bincount(rows, weights=s * sel_conf[picks], minlength=block.shape[0])
        total += float(np.tanh(nconf / eta).sum())
    return total
