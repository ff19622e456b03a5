"""The continuous Tagger against an independent float64 NumPy transcription of the reference's
forward pass (CuriousAI/tagger ``tagger.py`` with ``gauss_stable_v``; laid out groups-first as
Theano does), with the same parameters and random draws. Written from reading the reference,
not from our code, so it checks the port rather than restating it."""
import numpy as np
import torch

from tagger.config import ModelConfig
from tagger.model import Draws, Tagger

NOISE = 0.2


def _batch_norm(values, axes):
    mean = values.mean(axes, keepdims=True)
    return (values - mean) / np.sqrt(values.var(axes, keepdims=True) + 1e-10)


def _softmax(values, axis):
    exps = np.exp(values - values.max(axis, keepdims=True))
    return exps / exps.sum(axis, keepdims=True)


def _sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def _positive(raw):  # the reference's exp_inv_sinh
    root = np.sqrt(raw * raw + 1.0)
    return raw + root if raw > 0 else 1.0 / (root - raw)


def _gauss_stable_v(lateral, u, a):
    mean = a[0] * _sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    weight = _sigmoid(a[5] * _sigmoid(a[6] * u + a[7]) + a[8] * u + a[9])
    return (lateral - mean) * weight + mean


def _ladder(h0, params, layers):
    """Encoder then decoder on ``(K * B, H0)`` rows; returns the bottom estimate."""
    laterals, h = [h0], h0
    for i in range(layers):
        z = _batch_norm(h @ params[f"mapping.encoder_weights.{i}"], 0)
        laterals.append(z)
        pre = z + params[f"mapping.encoder_biases.{i}"]
        h = _softmax(pre * params["mapping.top_scale"], 1) if i == layers - 1 else np.maximum(0, pre)
    estimate = _gauss_stable_v(laterals[layers], _batch_norm(h, 0), params[f"mapping.combinators.{layers}.params"])
    for i in range(layers - 1, -1, -1):
        u = _batch_norm(estimate @ params[f"mapping.decoder_weights.{i}"], 0)
        estimate = _gauss_stable_v(laterals[i], u, params[f"mapping.combinators.{i}.params"])
    return estimate


def _reference_costs(x, corruption, mask_logits, params, groups, iterations, layers):
    """Per-iteration denoising costs of the reference's continuous TAG loop."""
    batch = x.shape[0]
    corrupted = np.repeat((x + NOISE * corruption)[None], groups, 0)  # (K, B, D)
    v = _positive(float(params["likelihood.v_raw"]))
    masks = _softmax(mask_logits.transpose(1, 0, 2), 0)  # (K, B, D)
    reconstructions = np.full(corrupted.shape, 0.5)
    costs = []
    for _ in range(iterations):
        variance = NOISE ** 2 + v ** 2  # v as a standard deviation inside L(m)
        loss = 0.5 * np.log(variance) + (reconstructions - corrupted) ** 2 / (2 * variance)
        likelihood_ratio = _softmax(-loss, 0)
        error = masks * (corrupted - reconstructions)
        inputs = np.concatenate([reconstructions, error, masks, likelihood_ratio], 2)  # (K, B, 4D)
        h0 = np.maximum(0, _batch_norm(inputs @ params["input_weight"], (0, 1)) + params["input_bias"])
        bottom = _ladder(h0.reshape(groups * batch, -1), params, layers).reshape(groups, batch, -1)
        reconstructions = params["z_scale"] * _batch_norm(bottom @ params["z_weight"], (0, 1)) + params["z_bias"]
        masks = _softmax(_batch_norm(bottom @ params["m_weight"], (0, 1)) * params["m_scale"], 0)
        log_p = -0.5 * (np.log(v) + (x[None] - reconstructions) ** 2 / v) + np.log(masks + 1e-5)  # v: variance
        top = log_p.max(0, keepdims=True)
        costs.append((-np.log(np.exp(log_p - top).sum(0, keepdims=True)) - top).mean())
    return np.array(costs)


def test_continuous_forward_matches_a_numpy_transcription_of_the_reference():
    torch.manual_seed(0)
    config = ModelConfig(input_size=784, groups=4, iterations=3, widths=(64, 48, 32), norm="batch",
                         likelihood="continuous", noise=NOISE, z0=0.5)
    model = Tagger(config).double()
    with torch.no_grad():  # move every parameter off its start so that every term matters
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    batch, groups = 8, 4
    x = torch.rand(batch, 784, dtype=torch.float64)
    draws = Draws(torch.randn(batch, 784, dtype=torch.float64), torch.randn(batch, groups, 784, dtype=torch.float64))
    ours = model(x, draws=draws).costs.mean(1).detach().numpy()  # (T,)
    params = {name: p.detach().numpy() for name, p in model.named_parameters()}
    reference = _reference_costs(x.numpy(), draws.corruption.numpy(), draws.mask_logits.numpy(), params,
                                 groups, 3, len(config.widths) - 1)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
