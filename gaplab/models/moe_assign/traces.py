"""Seeded routing traces: which experts each token picks, layer by layer and step by step.

Real traces with per-token routing are not in the popularity data, so this generator makes
them from a latent gate model (a design choice of this model):

- from layer ``l`` to ``l + 1`` a token's hidden state decays, moves by a fixed per-layer
  drift ``r_l`` and takes a noise term, so routing in adjacent layers is related (cross-layer
  correlation) and the drift is what the residual-corrected predictor estimates;
- the layer-0 state and the noise terms of every sequence follow an AR(1) process along its
  tokens, so a sequence's routing at step ``s`` resembles its routing at step ``s - 1`` in
  every layer (temporal correlation);
- the gate of layer ``l`` scores expert ``e`` by ``b_l,e + kappa <W_l,e, h_l>`` and routes the
  token to its top-k experts; the biases ``b_l`` are calibrated so that selection shares match
  a target per-layer popularity (Zipf, or counts from the popularity files);
- step 0 of each sequence is the prefill of ``batch * prompt_tokens`` tokens, the following
  steps decode one token per sequence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gaplab.models.moe_assign.hardware import get_shape

logger = logging.getLogger(__name__)


def zipf_popularity(experts: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Return Zipf shares ``1 / rank**exponent`` over ``experts``, in a random expert order."""
    if experts < 1:
        raise ValueError(f"experts must be at least 1, got {experts}")
    if exponent < 0:
        raise ValueError(f"the Zipf exponent must be non-negative, got {exponent}")
    shares = 1.0 / np.arange(1, experts + 1, dtype=float) ** exponent
    shares = shares[rng.permutation(experts)]
    return shares / shares.sum()


def cap_shares(shares: np.ndarray, top_k: int, headroom: float = 0.9) -> np.ndarray:
    """Cap each row's shares at ``headroom / top_k`` and spread the excess over the rest.

    A token picks an expert at most once, so no expert can receive more than ``1 / top_k`` of
    a layer's picks; a Zipf target above that cap could not be met by any routing.
    """
    shares = np.array(shares, dtype=float, ndmin=2)
    shares /= shares.sum(axis=1, keepdims=True)
    cap = headroom / top_k
    if cap * shares.shape[1] < 1.0:
        raise ValueError(
            f"{shares.shape[1]} experts cannot share the picks of top_k={top_k} below the cap"
        )
    for _ in range(shares.shape[1]):
        over = shares > cap
        if not over.any():
            break
        excess = np.where(over, shares - cap, 0.0).sum(axis=1, keepdims=True)
        shares = np.where(over, cap, shares)
        free = np.where(shares < cap, shares, 0.0)
        shares = shares + excess * free / free.sum(axis=1, keepdims=True)
    return shares


def sample_topk(
    rng: np.random.Generator, log_weights: np.ndarray, tokens: int, k: int
) -> np.ndarray:
    """Draw ``k`` distinct experts per token, with probabilities proportional to the weights.

    Uses the Gumbel top-k trick: the ``k`` largest of ``log_weights + Gumbel noise`` are a
    sample without replacement. Returns an integer array of shape ``(tokens, k)``.
    """
    log_weights = np.asarray(log_weights, dtype=float)
    if k > log_weights.shape[-1]:
        raise ValueError(f"cannot pick k={k} distinct experts out of {log_weights.shape[-1]}")
    keys = log_weights + rng.gumbel(size=(tokens, log_weights.shape[-1]))
    return np.argpartition(-keys, k - 1, axis=1)[:, :k]


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries along the last axis (unordered)."""
    return np.argpartition(-scores, k - 1, axis=-1)[..., :k]


def _counts(picks: np.ndarray, experts: int) -> np.ndarray:
    """Per-layer workloads from picks of shape ``(layers, tokens, k)``."""
    layers = picks.shape[0]
    offset = (np.arange(layers) * experts)[:, None, None]
    flat = np.bincount((picks + offset).ravel(), minlength=layers * experts)
    return flat.reshape(layers, experts)


@dataclass(frozen=True, eq=False)
class GateModel:
    """A synthetic stack of MoE gates over a latent hidden state of ``dim`` dimensions."""

    weights: np.ndarray
    """``W``: shape ``(layers, experts, dim)``."""
    bias: np.ndarray
    """``b``: shape ``(layers, experts)``; calibrated to the target popularity."""
    drift: np.ndarray
    """``r_l``: shape ``(layers - 1, dim)``, the mean move of the hidden state between layers."""
    residual: np.ndarray
    """Calibrated estimate of the per-layer residual, shape ``(layers - 1, dim)``."""
    top_k: int
    decay: float = 0.9
    """Factor on the hidden state from one layer to the next."""
    layer_noise: float = 0.35
    """Standard deviation of the fresh noise added per layer and dimension."""
    kappa: float = 1.5
    """Weight of the hidden state against the popularity bias in the gate scores."""

    @property
    def layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def experts(self) -> int:
        return int(self.weights.shape[1])

    @property
    def dim(self) -> int:
        return int(self.weights.shape[2])

    def hidden_states(
        self,
        start: np.ndarray,
        rng: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
    ) -> np.ndarray:
        """Propagate gate inputs of shape ``(tokens, dim)`` through the layers.

        ``noise`` contains the standard normal innovations of layers 1 to ``layers - 1``, shape
        ``(layers - 1, tokens, dim)``; they are drawn from ``rng`` when omitted. Returns shape
        ``(layers, tokens, dim)``.
        """
        tokens = start.shape[0]
        if noise is None:
            if rng is None:
                raise ValueError("hidden_states needs either noise or a random generator")
            noise = rng.normal(size=(self.layers - 1, tokens, self.dim))
        states = np.empty((self.layers, tokens, self.dim))
        states[0] = start
        for layer in range(1, self.layers):
            states[layer] = (
                self.decay * states[layer - 1]
                + self.drift[layer - 1]
                + self.layer_noise * noise[layer - 1]
            )
        return states

    def scores(self, states: np.ndarray, layer_offset: int = 0) -> np.ndarray:
        """Gate scores of shape ``(layers, tokens, experts)`` for states of the layers from
        ``layer_offset`` on."""
        layers = states.shape[0]
        weights = self._weights_by_dim[layer_offset : layer_offset + layers]
        bias = self.bias[layer_offset : layer_offset + layers]
        return bias[:, None, :] + self.kappa * (states @ weights)

    @cached_property
    def _weights_by_dim(self) -> np.ndarray:
        # Batched matmul is several times faster on a contiguous (layers, dim, experts) copy
        # than on a transposed view.
        return np.ascontiguousarray(self.weights.transpose(0, 2, 1))

    def route(self, states: np.ndarray) -> np.ndarray:
        """Top-k expert ids of every token and layer, shape ``(layers, tokens, top_k)``."""
        return _topk(self.scores(states), self.top_k)

    def predict_next(self, states: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """Predict the top-k picks of layer ``l + 1`` from the gate input of layer ``l``.

        The next layer's gate is applied to ``h_l + residual_l``; with ``residual`` zero this
        is the plain predictor that feeds the current gate input to the next gate. Returns
        shape ``(layers - 1, tokens, top_k)`` for layers 1 to ``layers - 1``.
        """
        shifted = states[:-1]
        if residual is not None:
            shifted = shifted + residual[:, None, :]
        return _topk(self.scores(shifted, layer_offset=1), self.top_k)


def build_gate_model(
    popularity: np.ndarray,
    top_k: int,
    rng: np.random.Generator,
    *,
    dim: int = 16,
    drift: float = 1.0,
    decay: float = 0.9,
    layer_noise: float = 0.35,
    kappa: float = 1.5,
    calibration_tokens: int = 512,
    calibration_rounds: int = 5,
) -> GateModel:
    """Draw random gates and calibrate biases and residuals to ``popularity``.

    ``popularity`` has shape ``(layers, experts)``; each row is a layer's target selection
    share. Calibration runs ``calibration_rounds`` rounds on ``calibration_tokens`` fresh
    tokens, nudging each bias by the log ratio of target to observed share, then estimates the
    residual ``r_l`` as the mean of ``h_l+1 - h_l`` over those tokens.
    """
    popularity = np.asarray(popularity, dtype=float)
    layers, experts = popularity.shape
    if layers < 2:
        raise ValueError(f"a gate model needs at least 2 layers, got {layers}")
    target = cap_shares(popularity, top_k)
    weights = rng.normal(scale=1.0 / np.sqrt(dim), size=(layers, experts, dim))
    directions = rng.normal(size=(layers - 1, dim))
    directions *= drift / np.linalg.norm(directions, axis=1, keepdims=True)
    floor = 1e-6
    model = GateModel(
        weights=weights,
        bias=np.log(np.maximum(target, floor)),
        drift=directions,
        residual=np.zeros((layers - 1, dim)),
        top_k=top_k,
        decay=decay,
        layer_noise=layer_noise,
        kappa=kappa,
    )
    start = rng.normal(size=(calibration_tokens, dim))
    states = model.hidden_states(start, rng)
    for _ in range(calibration_rounds):
        observed = _counts(model.route(states), experts) / (calibration_tokens * top_k)
        step = np.log(np.maximum(target, floor)) - np.log(np.maximum(observed, floor))
        model.bias[:] += 0.5 * np.clip(step, -2.0, 2.0)
    model.residual[:] = (states[1:] - states[:-1]).mean(axis=1)
    return model


@dataclass(frozen=True, eq=False)
class RoutingTrace:
    """Per-step, per-layer expert workloads of a batch, with next-layer predictions.

    ``workload[s, l, e]`` is the number of tokens routed to expert ``e`` of layer ``l`` in
    step ``s``. ``predicted[name][s, l, e]`` is the workload that predictor ``name`` expected
    for layer ``l`` from the gate input of layer ``l - 1`` (zero at layer 0).
    """

    shape: str
    top_k: int
    workload: np.ndarray
    phase: np.ndarray
    """``prefill`` or ``decode`` per step."""
    sequence: np.ndarray
    """Index of the batch of sequences each step belongs to; caches reset between them."""
    tokens: np.ndarray
    """Tokens routed per layer in each step."""
    predicted: dict[str, np.ndarray]
    popularity: np.ndarray
    """Target selection shares, shape ``(layers, experts)``."""
    seed: int = 0

    @property
    def steps(self) -> int:
        return int(self.workload.shape[0])

    @property
    def layers(self) -> int:
        return int(self.workload.shape[1])

    @property
    def num_experts(self) -> int:
        return int(self.workload.shape[2])

    @property
    def routed_events(self) -> int:
        """Number of (step, layer, expert) triples with at least one token."""
        return int(np.count_nonzero(self.workload))


def generate_trace(
    shape: str,
    *,
    seed: int = 0,
    batch: int = 16,
    prompt_tokens: int = 64,
    decode_steps: int = 32,
    sequences: int = 1,
    popularity: np.ndarray | None = None,
    zipf: float = 1.0,
    temporal_correlation: float = 0.9,
    dim: int = 16,
    drift: float = 1.0,
    layer_noise: float = 0.35,
    kappa: float = 1.5,
) -> RoutingTrace:
    """Generate a routing trace for a model shape.

    Parameters
    ----------
    shape
        Model shape name (``mixtral-8x7b``, ``deepseek-v2-lite``, ``qwen3-30b-a3b``).
    seed
        Seed of every random draw; the same arguments give the same trace.
    batch
        Sequences decoded together.
    prompt_tokens
        Prompt length of each sequence; 0 skips the prefill step.
    decode_steps
        Decode steps per batch of sequences.
    sequences
        Batches of sequences, one after the other.
    popularity
        Target selection shares, shape ``(layers, experts)``; Zipf shares in a random order
        per layer when omitted.
    zipf
        Zipf exponent of the default popularity.
    temporal_correlation
        AR(1) coefficient of a sequence's hidden state from one token to the next, in [0, 1).
    dim, drift, layer_noise, kappa
        Gate model parameters; see :func:`build_gate_model`.
    """
    model_shape = get_shape(shape)
    layers, experts, k = model_shape.layers, model_shape.experts, model_shape.top_k
    for name, value in (("batch", batch), ("decode_steps", decode_steps), ("sequences", sequences)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if prompt_tokens < 0:
        raise ValueError(f"prompt_tokens must be non-negative, got {prompt_tokens}")
    if not 0 <= temporal_correlation < 1:
        raise ValueError(f"temporal_correlation must lie in [0, 1), got {temporal_correlation}")
    rng = np.random.default_rng(seed)
    if popularity is None:
        popularity = np.stack([zipf_popularity(experts, zipf, rng) for _ in range(layers)])
        popularity = cap_shares(popularity, k)
    popularity = np.asarray(popularity, dtype=float)
    if popularity.shape != (layers, experts):
        raise ValueError(
            f"popularity has shape {popularity.shape}, expected ({layers}, {experts}) for "
            f"shape {shape!r}"
        )
    gate = build_gate_model(
        popularity, k, rng, dim=dim, drift=drift, layer_noise=layer_noise, kappa=kappa
    )
    rho = temporal_correlation
    innovation = np.sqrt(1.0 - rho**2)

    workloads: list[np.ndarray] = []
    plain: list[np.ndarray] = []
    residual: list[np.ndarray] = []
    phases: list[str] = []
    sequence_ids: list[int] = []
    token_counts: list[int] = []

    def record(states: np.ndarray, phase: str, sequence: int) -> None:
        workloads.append(_counts(gate.route(states), experts))
        zero = np.zeros((1, experts), dtype=np.int64)
        plain.append(np.vstack([zero, _counts(gate.predict_next(states), experts)]))
        corrected = gate.predict_next(states, gate.residual)
        residual.append(np.vstack([zero, _counts(corrected, experts)]))
        phases.append(phase)
        sequence_ids.append(sequence)
        token_counts.append(states.shape[1])

    # The latent of a sequence is its layer-0 gate input plus the innovations of every later
    # layer, shape (layers, batch, dim); all of it follows the AR(1) process along tokens.
    latent_shape = (layers, batch, dim)
    for sequence in range(sequences):
        latent = rng.normal(size=latent_shape)
        if prompt_tokens:
            prompt = np.empty((prompt_tokens, *latent_shape))
            prompt[0] = latent
            for position in range(1, prompt_tokens):
                fresh = rng.normal(size=latent_shape)
                prompt[position] = rho * prompt[position - 1] + innovation * fresh
            latent = prompt[-1]
            tokens = prompt.transpose(1, 2, 0, 3).reshape(layers, batch * prompt_tokens, dim)
            record(gate.hidden_states(tokens[0], noise=tokens[1:]), "prefill", sequence)
        for _ in range(decode_steps):
            latent = rho * latent + innovation * rng.normal(size=latent_shape)
            record(gate.hidden_states(latent[0], noise=latent[1:]), "decode", sequence)

    logger.debug("generated a %s trace of %d steps (seed %d)", shape, len(phases), seed)
    return RoutingTrace(
        shape=shape,
        top_k=k,
        workload=np.stack(workloads),
        phase=np.array(phases),
        sequence=np.array(sequence_ids),
        tokens=np.array(token_counts),
        predicted={"plain": np.stack(plain), "residual": np.stack(residual)},
        popularity=popularity / popularity.sum(axis=1, keepdims=True),
        seed=seed,
    )
