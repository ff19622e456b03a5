"""Grouping scores: per-example AMI and ARI, vectorised in torch.

Both scores compare the true object id of every scored element (``objects > 0``)
with the predicted group (``argmax`` over the K masks) and match
``sklearn.metrics.adjusted_mutual_info_score(..., average_method="max")`` and
``sklearn.metrics.adjusted_rand_score``, special cases included, to about 1e-12.
All work is done in float64 on the device of the inputs with no per-example
Python loop: the expected mutual information is summed over the non-empty
``(example, true id, group)`` cells and their ``n_ij`` ranges, in chunks.
"""
from __future__ import annotations

import numpy as np
import torch

from .threads import on_few_threads

__all__ = ["ami", "ari", "mean_ami", "contingency"]

_EPS = float(np.finfo(np.float64).eps)
# Most elements in one (cells, width) tensor of the EMI sum, on CPU and elsewhere:
# on CPU small chunks stay in cache and avoid the page faults of large fresh
# temporaries, which cost more than the arithmetic.
_CHUNK_ELEMENTS = 1 << 17
_CHUNK_ELEMENTS_ACCEL = 1 << 24
# Most mask elements (b * K * D) counted at once on CPU (elsewhere: the whole batch).
_BLOCK_ELEMENTS = 1 << 20


def _as_tensor(x, device: torch.device | None = None) -> torch.Tensor:
    """A torch view of ``x`` (numpy array or tensor), moved to ``device`` if given."""
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        t = torch.as_tensor(x)
    return t if device is None else t.to(device)


def contingency(objects, masks) -> torch.Tensor:
    """Counts of scored elements per (true object, predicted group).

    Args:
        objects: ``(B, D)`` integer object ids, 0 = not scored (tensor or numpy).
        masks: ``(B, K, D)`` predicted group masks (tensor or numpy).

    Returns:
        ``(B, R, K)`` float64 counts, row ``r`` for object id ``r + 1`` where
        ``R = max(objects)`` (0 rows when nothing in the batch is scored).
    """
    masks = _as_tensor(masks)
    objects = _as_tensor(objects, masks.device)
    if masks.dim() != 3 or objects.dim() != 2 or objects.shape != masks[:, 0].shape:
        raise ValueError(f"expected objects (B, D) and masks (B, K, D), got "
                         f"{tuple(objects.shape)} and {tuple(masks.shape)}")
    if objects.is_floating_point() or objects.dtype == torch.bool:
        raise ValueError(f"objects must be an integer tensor, got {objects.dtype}")
    B, K, D = masks.shape
    if K == 0:
        raise ValueError("masks need at least one group (K >= 1)")
    if objects.numel() and int(objects.min()) < 0:
        raise ValueError("object ids must be >= 0")
    if masks.is_floating_point() and masks.numel() and not bool(torch.isfinite(masks).all()):
        raise ValueError("masks hold NaN or inf values (a NaN mask has no argmax: the score would be meaningless)")
    R = int(objects.max()) + 1 if objects.numel() else 1
    counts = torch.zeros(B, R * K, dtype=torch.float64, device=masks.device)  # (B, R*K)
    # Blocks of examples keep the temporaries small: on CPU, fresh large tensors
    # cost more in page faults than the arithmetic.
    step = max(1, _BLOCK_ELEMENTS // max(K * D, 1)) if masks.device.type == "cpu" else max(B, 1)
    ones = torch.ones(min(step, B), D, dtype=torch.float64, device=masks.device)  # (step, D)
    for start in range(0, B, step):
        blk = slice(start, start + step)
        # max(...).indices: the first maximum on ties, like argmax, but much
        # faster than argmax over a strided dimension on CPU; (b, D)
        pred = masks[blk].max(dim=1).indices
        index = (objects[blk].long() * K).add_(pred)  # (b, D) row-major (id, group)
        counts[blk].scatter_add_(1, index, ones[:index.shape[0]])
    return counts.view(B, R, K)[:, 1:]  # (B, R-1, K): drop unscored id 0


def _entropy(sizes: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of a labelling from its ``(B, L)`` label sizes and ``(B,)`` totals."""
    nz = sizes > 0  # (B, L)
    safe = torch.where(nz, sizes, torch.ones_like(sizes))
    log_n = torch.log(n.clamp(min=1))[:, None]  # (B, 1)
    terms = torch.where(nz, safe / n.clamp(min=1)[:, None] * (torch.log(safe) - log_n), 0.0)
    return -terms.sum(1)  # (B,)


def _mutual_info(cont: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 n: torch.Tensor) -> torch.Tensor:
    """Mutual information (nats) as sklearn's ``mutual_info_score``, ``(B,)``."""
    nz = cont > 0  # (B, R, C)
    safe = torch.where(nz, cont, torch.ones_like(cont))  # (B, R, C)
    outer = torch.where(nz, a[:, :, None] * b[:, None, :], torch.ones_like(cont))  # (B, R, C)
    n_safe = n.clamp(min=1)[:, None, None]  # (B, 1, 1)
    log_n = torch.log(n_safe)
    c_nm = safe / n_safe
    terms = c_nm * (torch.log(safe) - log_n) + c_nm * (-torch.log(outer) + log_n + log_n)
    terms = torch.where(nz & (terms.abs() >= _EPS), terms, 0.0)
    return terms.flatten(1).sum(1).clamp(min=0.0)  # (B,)


def _chunks(widths: np.ndarray, budget: int):
    """Split cells sorted by EMI width into ``[start, stop)`` runs of <= ``budget`` elements."""
    start, total = 0, len(widths)
    while start < total:
        stop = min(total, start + max(1, budget // max(int(widths[start]), 1)))
        # Widths grow along the run, so shrink it until it fits the budget.
        cost = np.arange(1, stop - start + 1) * widths[start:stop]
        stop = start + max(1, int(np.searchsorted(cost, budget, side="right")))
        yield start, stop
        start = stop


def _windows(table: torch.Tensor, starts: torch.Tensor, w: int) -> torch.Tensor:
    """``table[starts[:, None] + arange(w)]`` as a fast row gather of sliding windows.

    Args:
        table: ``(L,)`` values; ``starts + w`` may run up to ``w - 1`` past its end.
        starts: ``(m,)`` int64 first index of each window.
        w: window length.

    Returns:
        ``(m, w)`` the windows (zeros past the end of ``table``).
    """
    padded = torch.cat([table, table.new_zeros(w)])  # (L + w,)
    return padded.unfold(0, w, 1).index_select(0, starts)  # (m, w)


def _emi_cells(lo: torch.Tensor, width: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
               n: torch.Tensor, budget: int) -> torch.Tensor:
    """EMI term of each cell, summed over ``n_ij`` in ``[lo, lo + width)``.

    Args:
        lo, width, a, b, n: ``(M,)`` int64 per cell (``width >= 1``, sorted ascending).
        budget: most elements in one ``(cells, width)`` tensor.

    Returns:
        ``(M,)`` float64 sum over n_ij of term1 * term2 * term3 (sklearn's names).
    """
    device, top = lo.device, int(n.max())
    k = torch.arange(top + 1, dtype=torch.float64, device=device)  # (top+1,)
    log_fact = torch.lgamma(k + 1)  # (top+1,) log k!
    rev_log_fact = log_fact.flip(0)  # (top+1,) log (top - j)!
    k_log_k = k * torch.log(k.clamp(min=1))  # (top+1,) k log k
    # Per-cell parts of log term3 and of N * term1 * term2 = n_ij (log N - log ab + log n_ij).
    const = log_fact[a] + log_fact[b] + log_fact[n - a] + log_fact[n - b] - log_fact[n]  # (M,)
    log_nab = torch.log(n.double()) - torch.log(a.double()) - torch.log(b.double())  # (M,)
    # log (x - n_ij)! over n_ij = lo + t is the reversed table from top - x + lo on.
    starts = (lo, top - a + lo, top - b + lo, n - a - b + lo)  # log n!, (a-n)!, (b-n)!, (N-a-b+n)!
    out = torch.empty(lo.shape, dtype=torch.float64, device=device)  # (M,)
    widths = width.cpu().numpy()
    for start, stop in _chunks(widths, budget):
        w, sl = int(widths[stop - 1]), slice(start, stop)
        steps = torch.arange(w, device=device)  # (w,)
        gln = _windows(log_fact, starts[0][sl], w)  # (m, w), plus the other three
        gln += _windows(rev_log_fact, starts[1][sl], w)
        gln += _windows(rev_log_fact, starts[2][sl], w)
        gln += _windows(log_fact, starts[3][sl], w)
        pad = steps >= width[sl, None]  # (m, w) past this cell's range
        term3 = torch.sub(const[sl, None], gln).masked_fill_(pad, -torch.inf).exp_()  # (m, w)
        nij = (lo[sl, None] + steps).double()  # (m, w)
        term = nij.mul_(log_nab[sl, None]).add_(_windows(k_log_k, lo[sl], w)).mul_(term3)
        out[sl] = term.sum(1) / n[sl]
    return out


def _expected_mutual_info(a: torch.Tensor, b: torch.Tensor, n: torch.Tensor,
                          budget: int | None = None) -> torch.Tensor:
    """Expected mutual information as sklearn's ``expected_mutual_information``.

    sklearn sums, for every cell (i, j), over n_ij from max(1, a_i + b_j - N) to
    min(a_i, b_j). Here the non-empty cells of all ``(B, R, C)`` examples are
    flattened, sorted by range width and summed over ``(cells, n_ij)`` in chunks.

    Args:
        a: ``(B, R)`` float64 true-label sizes (0 for absent labels).
        b: ``(B, C)`` float64 predicted-label sizes.
        n: ``(B,)`` float64 number of scored elements.
        budget: most elements in one ``(cells, width)`` tensor (default: by device).

    Returns:
        ``(B,)`` float64 EMI (0 where either labelling has a single label).
    """
    if budget is None:
        budget = _CHUNK_ELEMENTS if a.device.type == "cpu" else _CHUNK_ELEMENTS_ACCEL
    B, R, C = a.shape[0], a.shape[1], b.shape[1]
    single = ((a > 0).sum(1) <= 1) | ((b > 0).sum(1) <= 1)  # (B,) EMI = 0
    ai, bi, ni = a.long(), b.long(), n.long()
    lo = (ai[:, :, None] + bi[:, None, :] - ni[:, None, None]).clamp(min=1)  # (B, R, C)
    width = torch.minimum(ai[:, :, None], bi[:, None, :]) - lo + 1  # (B, R, C), <= 0 if empty
    cells = ((width > 0) & ~single[:, None, None]).flatten().nonzero().squeeze(1)  # (M,)
    cells = cells[torch.argsort(width.flatten()[cells])]  # narrow cells first, to pad less
    emi = torch.zeros(B, dtype=torch.float64, device=a.device)  # (B,)
    if cells.numel():
        ex, row, col = cells // (R * C), cells // C % R, cells % C  # (M,) each
        terms = _emi_cells(lo.flatten()[cells], width.flatten()[cells], ai[ex, row],
                           bi[ex, col], ni[ex], budget)  # (M,)
        emi.index_add_(0, ex, terms)
    return emi


def _signed_clamp(x: torch.Tensor) -> torch.Tensor:
    """Push ``x`` away from 0 by at least float64 eps, keeping its sign (as sklearn)."""
    return torch.where(x < 0, x.clamp(max=-_EPS), x.clamp(min=_EPS))


def _table(objects, masks):
    """Contingency table ``(B, R, K)``, its row and column sums ``(B, R)``, ``(B, K)`` and totals ``(B,)``."""
    cont = contingency(objects, masks)
    a, b = cont.sum(2), cont.sum(1)
    return cont, a, b, a.sum(1)


@on_few_threads
def ami(objects, masks) -> torch.Tensor:
    """Adjusted mutual information per example over the scored elements.

    Matches ``sklearn.metrics.adjusted_mutual_info_score(true, pred,
    average_method="max")`` with ``true = objects[b][scored]`` and
    ``pred = masks[b].argmax(0)[scored]``, ``scored = objects[b] > 0``.

    Args:
        objects: ``(B, D)`` integer object ids (uint8/int64 tensor or numpy), 0 = not scored.
        masks: ``(B, K, D)`` float group masks (tensor or numpy).

    Returns:
        ``(B,)`` float64 AMI on the device of ``masks``.
    """
    cont, a, b, n = _table(objects, masks)
    mi = _mutual_info(cont, a, b, n)  # (B,)
    emi = _expected_mutual_info(a, b, n)  # (B,)
    h_true, h_pred = _entropy(a, n), _entropy(b, n)  # (B,), (B,)
    denominator = _signed_clamp(torch.maximum(h_true, h_pred) - emi)
    score = _signed_clamp(mi - emi) / denominator  # (B,)
    n_true, n_pred = (a > 0).sum(1), (b > 0).sum(1)  # (B,)
    trivial = (n_true == n_pred) & (n_true <= 1)  # both single-label or both empty
    score = torch.where((n_true == 1) | (n_pred == 1), 0.0, score)
    return torch.where(trivial, 1.0, score)


@on_few_threads
def ari(objects, masks) -> torch.Tensor:
    """Adjusted Rand index per example over the scored elements.

    Matches ``sklearn.metrics.adjusted_rand_score(true, pred)`` with the same
    ``true`` / ``pred`` as :func:`ami` (1.0 when no pair disagrees, e.g. N <= 1).

    Args:
        objects: ``(B, D)`` integer object ids (uint8/int64 tensor or numpy), 0 = not scored.
        masks: ``(B, K, D)`` float group masks (tensor or numpy).

    Returns:
        ``(B,)`` float64 ARI on the device of ``masks``.
    """
    cont, a, b, n = _table(objects, masks)
    squares = (cont * cont).flatten(1).sum(1)  # (B,) sum of n_ij^2
    tp = squares - n  # ordered pairs together in both
    fp = (b * b).sum(1) - squares  # together in pred only
    fn = (a * a).sum(1) - squares  # together in true only
    tn = n * n - fp - fn - squares
    den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)  # (B,)
    agree = (fn == 0) & (fp == 0)
    score = 2.0 * (tp * tn - fn * fp) / torch.where(agree, 1.0, den)
    return torch.where(agree, 1.0, score)


def mean_ami(objects, masks, batch_size: int = 1000) -> float:
    """Mean AMI over a dataset, scored ``batch_size`` examples at a time.

    Args:
        objects: ``(N, D)`` integer object ids (tensor or numpy), 0 = not scored.
        masks: ``(N, K, D)`` float group masks (tensor or numpy).
        batch_size: examples per call to :func:`ami`.

    Returns:
        The mean AMI as a Python float (nan for an empty dataset).
    """
    total, count = 0.0, 0
    for start in range(0, len(objects), batch_size):
        scores = ami(objects[start:start + batch_size], masks[start:start + batch_size])
        total, count = total + float(scores.sum()), count + scores.numel()
    return total / count if count else float("nan")
