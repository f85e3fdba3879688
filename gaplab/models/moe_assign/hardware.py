"""MoE model shapes and the RTX 3090 / PCIe 4.0 machine behind the affine time models.

The time of one expert on ``w`` tokens is affine in ``w`` (a design choice of this model, in
place of the lookup tables a warm-up profiling pass would produce):

- CPU: ``T_cpu(w) = a_c + b_c w`` with ``a_c`` = launch overhead + expert bytes / DRAM bandwidth
  (the weights are streamed once per call) and ``b_c`` = 2 flops per parameter / CPU flop rate;
- GPU: ``T_gpu(w) = a_g + b_g w`` with the same terms for the GPU's memory and tensor cores;
- copy: ``t_trans`` = expert bytes / effective pinned PCIe bandwidth + a fixed latency ``tau0``.

The machine is a local PC of the class used to evaluate workload-aware MoE offloading: an
AMD EPYC 7532 (32 cores), DDR4 at about 50 GB/s, and an RTX 3090 on PCIe 4.0 x16 (32 GB/s
nominal, about 25 GB/s effective with pinned memory). Flop rates are estimates, marked below.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class ModelShape:
    """The MoE structure of one language model.

    ``hidden_size`` and ``expert_intermediate_size`` size one routed expert, a gated MLP with
    three projection matrices (gate, up, down), so it contains ``3 * hidden * intermediate``
    parameters.
    """

    name: str
    layers: int
    """MoE layers."""
    experts: int
    """Routed experts per layer."""
    top_k: int
    """Experts each token is routed to in each layer."""
    shared_experts: int
    """Experts every token runs in each layer; they stay on the GPU."""
    hidden_size: int
    expert_intermediate_size: int
    bytes_per_param: float = 2.0
    """2 for bf16 weights."""

    def __post_init__(self) -> None:
        for name in ("layers", "experts", "top_k", "hidden_size", "expert_intermediate_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} of shape {self.name!r} must be at least 1")
        if self.top_k > self.experts:
            raise ValueError(
                f"top_k={self.top_k} of shape {self.name!r} exceeds its {self.experts} experts; "
                "a token cannot be routed to more experts than a layer has"
            )

    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert."""
        return 3 * self.hidden_size * self.expert_intermediate_size

    @property
    def expert_bytes(self) -> float:
        """Bytes of one routed expert's weights."""
        return self.expert_params * self.bytes_per_param


# Layer, routed-expert, top-k and shared-expert counts of the three models, with hidden and
# expert intermediate sizes from their published configurations.
SHAPES: dict[str, ModelShape] = {
    "mixtral-8x7b": ModelShape(
        "mixtral-8x7b",
        layers=32,
        experts=8,
        top_k=2,
        shared_experts=0,
        hidden_size=4096,
        expert_intermediate_size=14336,
    ),
    "deepseek-v2-lite": ModelShape(
        "deepseek-v2-lite",
        layers=27,
        experts=64,
        top_k=6,
        shared_experts=2,
        hidden_size=2048,
        expert_intermediate_size=1408,
    ),
    "qwen3-30b-a3b": ModelShape(
        "qwen3-30b-a3b",
        layers=48,
        experts=128,
        top_k=8,
        shared_experts=0,
        hidden_size=2048,
        expert_intermediate_size=768,
    ),
}


def get_shape(name: str) -> ModelShape:
    """Return the model shape called ``name``."""
    if name not in SHAPES:
        raise KeyError(f"unknown model shape {name!r}; known shapes: {', '.join(SHAPES)}")
    return SHAPES[name]


@dataclass(frozen=True)
class Hardware:
    """Throughput figures of one CPU + GPU machine, in bytes/s, flop/s and seconds."""

    name: str
    pcie_bytes_per_s: float
    """Effective host-to-device bandwidth with pinned memory."""
    pcie_latency_s: float
    """Fixed cost ``tau0`` of one host-to-device copy."""
    cpu_dram_bytes_per_s: float
    cpu_flops: float
    """Sustained flop rate of the whole CPU on expert GEMMs (an estimate)."""
    cpu_launch_s: float
    """Fixed cost of dispatching one expert to the CPU thread pool (an estimate)."""
    gpu_memory_bytes_per_s: float
    gpu_flops: float
    """Sustained bf16 tensor-core rate on small-batch expert GEMMs (an estimate)."""
    gpu_launch_s: float
    """Fixed cost of the kernel launches of one expert (an estimate)."""


RTX3090_PCIE4 = Hardware(
    "rtx3090-pcie4",
    pcie_bytes_per_s=25 * GB,
    pcie_latency_s=10e-6,
    cpu_dram_bytes_per_s=50 * GB,
    # 32 Zen 2 cores at 2.4 GHz with two 256-bit FMA units give about 2.4 Tflop/s fp32 peak;
    # 1 Tflop/s assumes about 40 % of it on bf16 weights converted on the fly.
    cpu_flops=1.0e12,
    cpu_launch_s=20e-6,
    gpu_memory_bytes_per_s=936 * GB,
    # The RTX 3090 peaks at 71 Tflop/s bf16 on tensor cores; small batches reach far less.
    gpu_flops=30e12,
    gpu_launch_s=10e-6,
)


@dataclass(frozen=True)
class CostModel:
    """Affine time coefficients of one routed expert on one machine, in seconds."""

    cpu_fixed_s: float
    """``a_c``: CPU time of a call, independent of tokens."""
    cpu_per_token_s: float
    """``b_c``: CPU time per routed token."""
    gpu_fixed_s: float
    """``a_g``."""
    gpu_per_token_s: float
    """``b_g``."""
    transfer_s: float
    """``t_trans``: host-to-device copy of the expert's weights."""
    expert_bytes: float
    shared_gpu_s: float = 0.0
    """GPU time of the shared experts on the batch, added to the GPU side of every layer."""

    def cpu_time(self, tokens: float) -> float:
        """CPU time of one expert on ``tokens`` tokens."""
        return self.cpu_fixed_s + self.cpu_per_token_s * tokens

    def gpu_time(self, tokens: float) -> float:
        """GPU compute time of one expert on ``tokens`` tokens, without the copy."""
        return self.gpu_fixed_s + self.gpu_per_token_s * tokens


def cost_model(
    shape: ModelShape | str, hardware: Hardware = RTX3090_PCIE4, tokens: int = 0
) -> CostModel:
    """Derive the affine time model of ``shape``'s experts on ``hardware``.

    Parameters
    ----------
    shape
        A :class:`ModelShape` or the name of one in :data:`SHAPES`.
    hardware
        The machine; the RTX 3090 / PCIe 4.0 class by default.
    tokens
        Tokens in the batch, used only for the GPU time of the shared experts.
    """
    if isinstance(shape, str):
        shape = get_shape(shape)
    size = shape.expert_bytes
    flops_per_token = 2.0 * shape.expert_params
    gpu_fixed = hardware.gpu_launch_s + size / hardware.gpu_memory_bytes_per_s
    gpu_per_token = flops_per_token / hardware.gpu_flops
    return CostModel(
        cpu_fixed_s=hardware.cpu_launch_s + size / hardware.cpu_dram_bytes_per_s,
        cpu_per_token_s=flops_per_token / hardware.cpu_flops,
        gpu_fixed_s=gpu_fixed,
        gpu_per_token_s=gpu_per_token,
        transfer_s=hardware.pcie_latency_s + size / hardware.pcie_bytes_per_s,
        expert_bytes=size,
        shared_gpu_s=shape.shared_experts * (gpu_fixed + gpu_per_token * tokens),
    )
