"""Tests of evaluators.coreset (Prune4ReL) against a straightforward NumPy loop.

The reference below is written from the definitions alone: the full n x n similarity
matrix in float64, N(x) updated with a whole column after every pick, every
candidate's gain recomputed at every step, and the argmax taken by a plain loop in
index order (strict >, so ties go to the lowest index). The self gain, which the code
under test evaluates in log space so that it survives tanh saturation, is evaluated
here as the plain difference tanh(a + c) - tanh(a) in 80-digit decimal arithmetic;
the full gain as the plain float64 difference of tanh sums, which is accurate because
its largest value is never tiny. Exact agreement of the pick orders is only asserted
where the reference has no near-ties (checked at every step), so that rounding
cannot legitimately flip a choice.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest

from evaluators import coreset
from evaluators.coreset import objective, prune4rel

_CTX = decimal.Context(prec=80)


def _dtanh(x: decimal.Decimal, ctx: decimal.Context = _CTX) -> decimal.Decimal:
    """tanh(x) for x >= 0 in decimal arithmetic (80 digits unless told)."""
    e = ctx.exp(ctx.multiply(-2, x))
    return ctx.divide(ctx.subtract(1, e), ctx.add(1, e))


def _dec(x: float) -> decimal.Decimal:
    return decimal.Decimal(float(x))


def _fixture(
    n: int = 200,
    d: int = 8,
    sizes: tuple[int, ...] = (110, 60, 30),
    seed: int = 0,
    clusters: int = 6,
    spread: float = 0.45,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered float64 embeddings, confidences in (0.05, 1), unequal noisy classes."""
    assert sum(sizes) == n
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    member = rng.integers(0, clusters, n)
    emb = centres[member] + spread * rng.standard_normal((n, d)) / math.sqrt(d)
    conf = rng.uniform(0.05, 1.0, n)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    return emb, conf, labels


def _weights(emb: np.ndarray, tau: float) -> np.ndarray:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = 0.5 + 0.5 * (e @ e.T)
    return np.where(s > tau, s, 0.0)


def _reference(emb, conf, labels, budget, *, tau, eta, balance, gain, min_gap):
    """Greedy Prune4ReL by the book; returns the picks.

    Asserts that at every step the best gain beats the runner-up by a relative
    `min_gap`, i.e. that the fixture has no near-ties rounding could flip.
    """
    n = len(conf)
    w = _weights(emb, tau)
    classes = sorted(set(labels.tolist()))
    nconf = np.zeros(n)
    chosen = np.zeros(n, bool)
    picks, gaps = [], []
    last = -1
    for _ in range(budget):
        if balance:
            k = (last + 1) % len(classes)
            while all(chosen[labels == classes[k]]):
                k = (k + 1) % len(classes)
            last = k
            cand = [j for j in range(n) if labels[j] == classes[k] and not chosen[j]]
        else:
            cand = [j for j in range(n) if not chosen[j]]
        if gain == "self":
            gains = [
                _dtanh(_CTX.divide(_dec(nconf[j]) + _dec(conf[j]), _dec(eta)))
                - _dtanh(_CTX.divide(_dec(nconf[j]), _dec(eta)))
                for j in cand
            ]
        else:
            base = np.tanh(nconf / eta).sum()
            gains = [np.tanh((nconf + w[:, j] * conf[j]) / eta).sum() - base for j in cand]
        best = 0
        for i in range(1, len(cand)):
            if gains[i] > gains[best]:
                best = i
        rest = sorted(gains, reverse=True)
        if len(cand) > 1 and rest[0] > 0:
            gaps.append(float((rest[0] - rest[1]) / rest[0]))
        p = cand[best]
        picks.append(p)
        chosen[p] = True
        nconf += w[:, p] * conf[p]
    assert not gaps or min(gaps) > min_gap, "fixture has near-ties: choose another seed"
    return np.array(picks)


def _objective_ref(emb, conf, idx, tau, eta):
    w = _weights(emb, tau)
    return float(np.tanh((w[:, idx] @ conf[idx]) / eta).sum())


@pytest.fixture(scope="module")
def data():
    emb, conf, labels = _fixture()
    w = _weights(emb, 0.8)
    degree = (w > 0).sum(1) - 1
    # Neighbourhoods at tau = 0.8 are neither empty nor everything.
    assert 3 < degree.mean() < 60, degree.mean()
    return emb, conf, labels


@pytest.mark.parametrize("balance", [True, False])
@pytest.mark.parametrize("gain", ["self", "full"])
def test_matches_reference(data, gain, balance):
    emb, conf, labels = data
    kw = dict(tau=0.8, eta=1.0, balance=balance, gain=gain)
    got = prune4rel(emb, conf, labels, 90, **kw)
    want = _reference(emb, conf, labels, 90, min_gap=1e-9, **kw)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64


@pytest.mark.parametrize("gain", ["self", "full"])
def test_exact_whatever_the_anchors_and_batches(data, gain, monkeypatch):
    """Anchor skipping, batch sizes and the direct path change the time, never the picks."""
    emb, conf, labels = data
    want = prune4rel(emb, conf, labels, 90, tau=0.8, gain=gain)
    # 200 anchors leave ~1 example per bucket: the skip test is as tight as it gets.
    for anchors, batch, lag in [(1, 1, 0), (40, 7, 0), (200, 10_000, 0), (200, 3, 4)]:
        monkeypatch.setattr(coreset, "_num_anchors", lambda _n, k=anchors: k)
        monkeypatch.setattr(coreset, "_REFRESH_BATCH", batch)
        monkeypatch.setattr(coreset, "_DIRECT_LAG", lag)
        np.testing.assert_array_equal(prune4rel(emb, conf, labels, 90, tau=0.8, gain=gain), want)


@pytest.mark.parametrize("gain", ["self", "full"])
def test_ties_go_to_the_lowest_index(data, gain):
    emb, _, labels = data
    # Zero confidences: every gain is exactly 0 at every step.
    picks = prune4rel(emb, np.zeros(200), labels, 12, tau=0.8, gain=gain, balance=False)
    np.testing.assert_array_equal(picks, np.arange(12))
    picks = prune4rel(emb, np.zeros(200), labels, 12, tau=0.8, gain=gain)
    want = [np.flatnonzero(labels == k)[i] for i in range(4) for k in range(3)]
    np.testing.assert_array_equal(picks, want)


def test_self_gain_ties_without_neighbours():
    """Orthogonal examples and one confidence: all self gains stay equal."""
    emb = np.eye(12)
    picks = prune4rel(emb, np.full(12, 0.7), np.zeros(12), 12, tau=0.6, balance=False)
    np.testing.assert_array_equal(picks, np.arange(12))


def test_saturated_self_gain_matches_reference():
    """Tight clusters saturate tanh (N/eta > 19); the log-space gain still orders
    candidates exactly as the 80-digit reference does, not by index."""
    emb, conf, labels = _fixture(
        n=300, d=16, sizes=(100, 100, 100), seed=3, clusters=4, spread=0.25
    )
    kw = dict(tau=0.9, eta=1.0, balance=True, gain="self")
    want = _reference(emb, conf, labels, 120, min_gap=1e-9, **kw)
    nconf = _weights(emb, 0.9)[:, want] @ conf[want]
    rest = np.setdiff1d(np.arange(300), want)
    # The plain float64 difference has rounded many gains to 0: it would pick by index.
    assert np.sum(np.tanh(nconf[rest] + conf[rest]) - np.tanh(nconf[rest]) == 0) > 10
    np.testing.assert_array_equal(prune4rel(emb, conf, labels, 120, **kw), want)


def test_float32_matches_float64(data):
    """float32 similarities pick the same examples when no pair sits near the threshold."""
    emb, conf, labels = data
    emb32 = emb.astype(np.float32)
    e = emb32.astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert np.abs(0.5 + 0.5 * (e @ e.T) - 0.8).min() > 1e-5
    for gain in ["self", "full"]:
        got = prune4rel(emb32, conf, labels, 90, tau=0.8, gain=gain)
        np.testing.assert_array_equal(got, prune4rel(e, conf, labels, 90, tau=0.8, gain=gain))


def test_objective_matches_reference(data):
    emb, conf, _ = data
    rng = np.random.default_rng(1)
    for size in [0, 1, 17, 200]:
        idx = rng.permutation(200)[:size]
        for eta in [0.5, 3.0]:
            want = _objective_ref(emb, conf, idx, 0.8, eta)
            assert objective(emb, conf, idx, tau=0.8, eta=eta) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("balance", [True, False])
def test_full_gain_beats_self_and_random(data, balance):
    emb, conf, labels = data
    kw = dict(tau=0.8, eta=1.0)
    budget = 40
    f_full = objective(
        emb, conf, prune4rel(emb, conf, labels, budget, gain="full", balance=balance, **kw), **kw
    )
    f_self = objective(
        emb, conf, prune4rel(emb, conf, labels, budget, gain="self", balance=balance, **kw), **kw
    )
    assert f_full >= f_self
    rng = np.random.default_rng(2)
    for _ in range(10):
        assert f_full >= objective(emb, conf, rng.permutation(200)[:budget], **kw)


def test_balance_per_class(data):
    emb, conf, labels = data  # classes of 110, 60 and 30 examples
    for budget in [7, 60, 90, 150, 200]:
        picks = prune4rel(emb, conf, labels, budget, tau=0.8)
        assert len(set(picks.tolist())) == budget
        counts = np.bincount(labels[picks], minlength=3)
        sizes = np.bincount(labels, minlength=3)
        left = counts[counts < sizes]  # classes that have not run out
        assert left.size == 0 or left.max() - left.min() <= 1, (budget, counts)
        assert np.all(counts[counts < sizes] >= counts[counts == sizes].max(initial=0))
        # Until a class runs out, step i serves class i mod C.
        first = labels[picks[: min(budget, 90)]]
        np.testing.assert_array_equal(first, np.arange(first.size) % 3)


def test_string_labels_and_edge_budgets(data):
    emb, conf, labels = data
    names = np.array(["cat", "dog", "ant"])[labels]  # sorted: ant, cat, dog
    picks = prune4rel(emb, conf, names, 6, tau=0.8)
    np.testing.assert_array_equal(names[picks], ["ant", "cat", "dog"] * 2)
    assert prune4rel(emb, conf, labels, 0).size == 0
    everything = prune4rel(emb, conf, labels, 200, tau=0.8)
    np.testing.assert_array_equal(np.sort(everything), np.arange(200))


def test_gain_formulas_against_decimal():
    ctx = decimal.Context(prec=400)  # the gain at a = 150 is ~1e-130
    a = np.array([0.0, 1e-3, 0.5, 3.0, 12.0, 40.0, 150.0])
    for b in [1e-6, 0.05, 1.0, 7.0]:
        inc = coreset._tanh_increment(a, np.full_like(a, b))
        logg = coreset._log_self_gain(a, np.full_like(a, b))
        for ai, got, lg in zip(a, inc, logg, strict=True):
            want = ctx.subtract(_dtanh(ctx.add(_dec(ai), _dec(b)), ctx), _dtanh(_dec(ai), ctx))
            assert float(ctx.ln(want)) == pytest.approx(lg, rel=1e-12, abs=1e-12)
            if ai < 300:
                assert got == pytest.approx(float(want), rel=1e-12)
    assert coreset._log_self_gain(np.array([2.0]), np.array([0.0]))[0] == -np.inf


def test_errors(data):
    emb, conf, labels = data
    with pytest.raises(ValueError, match="same length"):
        prune4rel(emb, conf[:-1], labels, 5)
    with pytest.raises(ValueError, match="same length"):
        prune4rel(emb, conf, labels[:-1], 5)
    with pytest.raises(ValueError, match="budget must lie in"):
        prune4rel(emb, conf, labels, 201)
    with pytest.raises(ValueError, match="budget must lie in"):
        prune4rel(emb, conf, labels, -1)
    with pytest.raises(ValueError, match="integer"):
        prune4rel(emb, conf, labels, 2.5)
    bad = emb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        prune4rel(bad, conf, labels, 5)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        objective(bad, conf, [1, 2], tau=0.8, eta=1.0)
    bad = conf.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        prune4rel(emb, bad, labels, 5)
    bad[0] = -0.1
    with pytest.raises(ValueError, match=">= 0"):
        prune4rel(emb, bad, labels, 5)
    zero = emb.copy()
    zero[4] = 0.0
    with pytest.raises(ValueError, match="zero vectors"):
        prune4rel(zero, conf, labels, 5)
    with pytest.raises(ValueError, match="unknown gain"):
        prune4rel(emb, conf, labels, 5, gain="marginal")
    for tau in [-0.1, 1.5, np.nan]:
        with pytest.raises(ValueError, match="tau"):
            prune4rel(emb, conf, labels, 5, tau=tau)
    for eta in [0.0, -1.0, np.inf]:
        with pytest.raises(ValueError, match="eta"):
            prune4rel(emb, conf, labels, 5, eta=eta)
    with pytest.raises(ValueError, match="2-D"):
        prune4rel(emb[0], conf, labels, 5)
    with pytest.raises(ValueError, match="distinct"):
        objective(emb, conf, [1, 1], tau=0.8, eta=1.0)
    with pytest.raises(ValueError, match="lie in"):
        objective(emb, conf, [200], tau=0.8, eta=1.0)
