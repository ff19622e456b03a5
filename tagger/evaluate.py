"""Evaluation as the reference computes it (docs/design.md, "Evaluation"): denoising cost and AMI per iteration."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .classify import class_error, class_probabilities
from .metrics import ami, ari
from .overlap import mbo, miou
from .model import TaggerOutput


ASSIGNS = ("masks", "posterior")  # what a grouping is scored and drawn by (``tagger eval|show --assign``)


@torch.no_grad()
def assigned(model, x: torch.Tensor, masks: torch.Tensor, reconstructions: torch.Tensor,
             assign: str = "masks") -> torch.Tensor:
    """``(T, B, K, P)``: the masks of each iteration as given, or (``"posterior"``) each pixel's
    posterior under that iteration's reconstructions ``(T, B, K, D)`` (:meth:`tagger.Tagger.posterior`)."""
    if assign not in ASSIGNS:
        raise ValueError(f"assign must be one of {', '.join(ASSIGNS)}, got {assign!r}")
    if assign == "masks":
        return masks
    return torch.stack([model.posterior(x, z, m) for z, m in zip(reconstructions, masks)])


@torch.no_grad()
def infer_in_batches(model, features: torch.Tensor, batch_size: int = 100, last_only: bool = False,
                     **infer) -> TaggerOutput:
    """:meth:`tagger.Tagger.infer` over ``features`` ``(N, D)`` in batches of ``batch_size``, joined
    along the batch: masks ``(T, N, K, P)``, reconstructions ``(T, N, K, D)``, top ``(T, N, K, HL)``.

    Batches matter beyond memory: a BatchNorm model normalises over its batch, so every tool that
    shows or scores a grouping uses ``tagger eval``'s batches (100). With ``last_only`` only the last
    iteration is kept (T = 1 in the shapes above), for large N. ``infer`` goes to ``model.infer``
    (``iterations``, ``groups``, ``generator``, ``remove_groups``); one ``generator`` serves all
    batches in order, so the result does not depend on how the caller splits its work.
    """
    kept = slice(-1, None) if last_only else slice(None)
    outputs = [model.infer(batch, **infer) for batch in features.split(batch_size)]
    joined = lambda name: torch.cat([getattr(out, name)[kept] for out in outputs], 1)  # noqa: E731
    return TaggerOutput(costs=torch.cat([out.costs[kept] for out in outputs], 1), masks=joined("masks"),
                        reconstructions=joined("reconstructions"), top=joined("top"),
                        last_top=torch.cat([out.last_top for out in outputs], 0))


@torch.no_grad()
def evaluate(model, features: torch.Tensor, objects: torch.Tensor, iterations: int = 5,
             groups: int | None = None, batch_size: int = 100, seed: int = 0,
             progress: bool = False, labels: torch.Tensor | None = None,
             subsets: dict[str, np.ndarray] | None = None, assign: str = "masks",
             overlap: bool = False) -> dict:
    """Denoising cost and AMI after each iteration, averaged over examples.

    The denoising cost runs the loop on the corrupted input (the training objective, as the
    reference's validation monitor); AMI runs it on the clean input and scores the argmax
    group of each iteration against ``objects`` (elements with id 0 are not scored).

    Args:
        model: a :class:`tagger.Tagger`.
        features: ``(N, D)`` float inputs on the model's device.
        objects: ``(N, D)`` integer object ids (any device).
        iterations: T to run; every iteration 1..T is reported.
        groups: K (default: the training value).
        batch_size: evaluation batch (BatchNorm models use batch statistics, as the reference).
        seed: seeds the corruption and initial masks, so evaluation is repeatable.
        labels: optional ``(N, L)`` class labels; then ``class_error`` (%, per iteration, clean
            input, as the reference's ``error_rate_clean``) is added.
        subsets: optional named ``(N,)`` bool selections of examples (e.g. Tetrominoes scenes
            with distinct colours); then ``ari_subsets[name]`` is FG-ARI per iteration over each.
        assign: what is scored: ``"masks"`` (the network's masks m, as the reference) or
            ``"posterior"`` (m reweighted by each group's likelihood of the pixel,
            :meth:`tagger.Tagger.posterior`).
        overlap: also the mask-overlap scores ``mbo`` and ``miou`` (:mod:`tagger.overlap`) per
            iteration; off by default so the training loop's validation costs no more
            (``tagger eval`` turns it on).

    Returns:
        ``{"iterations", "denoising_cost", "ami", "ami_std", "ari", "examples", "groups"}`` (+ ``class_error``,
        + ``mbo``, ``miou``, ``overlap_examples`` with ``overlap``); ``ari`` is the field's FG-ARI (elements with
        id 0 are not scored). ``mbo`` / ``miou`` are means over the ``overlap_examples`` examples that have an
        object (id > 0); the others have no score (NaN per example) and are skipped, where FG-ARI counts
        such an example as 1.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=features.device).manual_seed(seed)
    batches = []  # per batch: {"cost": (T,), "ami": (T, B), "ari": (T, B)[, "error": (T, B)]}
    starts = range(0, features.shape[0], batch_size)
    for start in tqdm(starts, desc="eval", leave=False, disable=not progress):
        chosen = slice(start, start + batch_size)
        batches.append(_score_batch(model, features[chosen], objects[chosen], iterations, groups, generator,
                                    assign, None if labels is None else labels[chosen], overlap))
    model.train(was_training)
    total = features.shape[0]
    joined = lambda key: torch.cat([batch[key] for batch in batches], dim=1)  # noqa: E731  (T, N)
    per_example, per_example_ari = joined("ami"), joined("ari")
    result = {
        "iterations": list(range(1, iterations + 1)),
        "denoising_cost": (torch.stack([batch["cost"] for batch in batches]).sum(0) / total).tolist(),
        "ami": per_example.mean(dim=1).tolist(),
        "ami_std": per_example.std(dim=1).tolist() if total > 1 else [0.0] * iterations,
        "ari": per_example_ari.mean(dim=1).tolist(),  # FG-ARI: id 0 (background) is not scored
        "examples": int(total),
        "groups": int(groups or model.config.groups),
        "assign": assign,
    }
    if subsets:
        result["ari_subsets"] = {name: {"examples": int(np.sum(chosen)),
                                        "ari": per_example_ari[:, torch.as_tensor(chosen)].mean(dim=1).tolist()}
                                 for name, chosen in subsets.items()}
    if overlap:  # NaN for an example with no object: skipped, as OCLF skips it
        result["mbo"], result["miou"] = (joined(key).nanmean(dim=1).tolist() for key in ("mbo", "miou"))
        result["overlap_examples"] = int((torch.as_tensor(objects) > 0).any(dim=1).sum())  # scored
    if labels is not None:
        result["class_error"] = (100.0 * joined("error").double().mean(dim=1)).tolist()
    return result


def _score_batch(model, x, objects, iterations, groups, generator, assign, labels,
                 overlap=False) -> dict[str, torch.Tensor]:
    """One evaluation batch: the summed denoising cost per iteration on the corrupted input, then
    AMI, FG-ARI (mBO, mIoU, class error) per iteration and example on the clean input, in that order
    (both draw from ``generator``)."""
    noisy = model(x, iterations=iterations, groups=groups, corrupt=True, generator=generator)
    clean = model.infer(x, iterations=iterations, groups=groups, generator=generator)
    scored = assigned(model, x, clean.masks, clean.reconstructions, assign)  # (T, B, K, P)
    scores = {"cost": noisy.costs.sum(dim=1).double().cpu(),  # (T,)
              "ami": torch.stack([ami(objects, masks).cpu() for masks in scored]),  # (T, B)
              "ari": torch.stack([ari(objects, masks).cpu() for masks in scored])}  # (T, B)
    if overlap:  # (T, B) each, NaN where an example has no object
        scores["mbo"] = torch.stack([mbo(objects, masks).cpu() for masks in scored])
        scores["miou"] = torch.stack([miou(objects, masks).cpu() for masks in scored])
    if labels is not None:
        labels = labels.to(x.device)
        scores["error"] = torch.stack([class_error(class_probabilities(top), labels).cpu() for top in clean.top])
    return scores


def median_over_runs(results: list[dict]) -> dict:
    """The paper's Table 1 statistic: per iteration, the median over runs (seeds) of each
    run's mean AMI, denoising cost and (if every run has them) FG-ARI, mBO, mIoU and class error,
    with the min and max.

    Args:
        results: :func:`evaluate` outputs with the same iterations.
    """
    if not results:
        raise ValueError("no runs to summarise")
    iterations = results[0]["iterations"]
    if any(r["iterations"] != iterations for r in results):
        raise ValueError("runs were evaluated with different iterations")
    summary = {"iterations": iterations, "runs": len(results)}
    for key in ("ami", "ari", "mbo", "miou", "denoising_cost", "class_error"):
        if all(key in r for r in results):
            values = np.array([r[key] for r in results], dtype=np.float64)  # (runs, T)
            summary[key] = np.median(values, axis=0).tolist()
            summary[f"{key}_min"], summary[f"{key}_max"] = values.min(0).tolist(), values.max(0).tolist()
    return summary


def format_table(result: dict, title: str = "") -> str:
    """Markdown table like the paper's Table 1a."""
    head = "| | " + " | ".join(f"Iter {i}" for i in result["iterations"]) + " |"
    rule = "|---" * (len(result["iterations"]) + 1) + "|"
    cost = "| Denoising cost | " + " | ".join(f"{v:.3f}" for v in result["denoising_cost"]) + " |"
    score = "| AMI | " + " | ".join(f"{v:.3f}" for v in result["ami"]) + " |"
    rows = [head, rule, cost, score]
    if "ari" in result:
        rows.append("| FG-ARI | " + " | ".join(f"{v:.3f}" for v in result["ari"]) + " |")
    for name, subset in result.get("ari_subsets", {}).items():
        rows.append(f"| FG-ARI, {name} ({subset['examples']}) | " + " | ".join(f"{v:.3f}" for v in subset["ari"]) + " |")
    for key, name in (("mbo", "mBO"), ("miou", "mIoU")):
        if key in result:
            rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in result[key]) + " |")
    if "class_error" in result:
        rows.append("| Class error % | " + " | ".join(f"{v:.1f}" for v in result["class_error"]) + " |")
    return "\n".join(([title] if title else []) + rows)


def write_json(result: dict, path: Path) -> None:
    from .files import write_text_atomically

    write_text_atomically(Path(path), json.dumps(result, indent=2, default=lambda o: np.asarray(o).tolist()) + "\n")
