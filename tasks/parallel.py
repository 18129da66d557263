"""Runs one per-device train step over every device of every process; joins a multi-host job.

The step is written for one device with named-axis collectives over `AXIS`
(all-gather of embeddings, psum of gradients, cross-replica BatchNorm). `Runner`
runs it either with `jax.shard_map` over a 1-D `data` mesh under `jax.jit` (the
default), or with `jax.pmap` (`--config.parallel=pmap`). Both treat the state as
replicated and the batch as split along its first axis, so they compute the same
update. The state leaves and enters the runner as globally replicated arrays,
which is what the Orbax checkpoints hold.

`initialize_distributed` joins a multi-process job (`--coordinator_address`,
`--num_processes`, `--process_id`, or what SLURM and TPU pods say) before any
computation, so that the mesh spans every process's devices.
"""

from __future__ import annotations

import ctypes
import os
import platform
import socket
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from errors import UserError

AXIS = "data"
# XLA:CPU flags genviews sets unless the user's XLA_FLAGS names them. They touch only the
# CPU backend (GPU and TPU compilers ignore xla_cpu_* options). YNNPACK's fusion of single
# convolutions runs the weight gradients of strided convolutions as slow window-dilated
# convolutions; without it they take XLA's own convolution path (README: Speed).
CPU_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)
# glibc malloc options (mallopt's parameter number, value) genviews sets unless the user
# tuned malloc (a glibc.malloc tunable in GLIBC_TUNABLES, or one of glibc's MALLOC_*
# variables): one arena, no mmap'd blocks, no trimming (-1), so that memory freed after a
# step is reused by the next. By default glibc maps every block over 32 MB afresh and unmaps
# it when freed, and XLA:CPU allocates a step's temporary buffer (197 MB for the quickstart's
# step) at every call: each step faulted all those pages in again (78,000 page faults a
# step; README: Speed on CPU). All three are needed: XLA's threads allocate in arenas of
# their own otherwise, where a block over 64 MB is always mmap'd. Memory is not given back
# to the system while the process runs, which a training process, reusing it every step,
# does not need.
MALLOC_OPTIONS = {"M_ARENA_MAX": (-8, 1), "M_MMAP_MAX": (-4, 0), "M_TRIM_THRESHOLD": (-1, -1)}
MALLOC_VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
                    "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")  # glibc reads these too
MODES = ("shard_map", "pmap")  # config key parallel: how Runner maps the step over devices


def set_cpu_flags() -> bool:
    """Makes genviews' CPU settings, keeping any the user made: CPU_XLA_FLAGS added to
    $XLA_FLAGS (XLA reads the variable when JAX starts its backend, so entry points call this
    before any computation) and set_malloc_options(), whose answer it returns."""
    add_xla_flags(CPU_XLA_FLAGS)
    return set_malloc_options()


def add_xla_flags(flags) -> None:
    """Adds each of `flags` ("--name=value") to $XLA_FLAGS unless it already names that flag:
    a value the user set is kept."""
    current = os.environ.get("XLA_FLAGS", "")
    added = [f for f in flags if f.split("=")[0] not in current]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()


def machine() -> dict:
    """Where this process runs: the CPU, JAX's backend, device and process counts, and the
    versions. Float32 results are bit-identical only on the same machine with the same device
    count (README: What to expect elsewhere), so eval.json and a study's results say which
    machine they came from."""
    import jaxlib

    cpu, isa = platform.processor() or platform.machine(), []
    try:  # Linux: the model (a VM may name only the vendor) and the vector units, which
        with open("/proc/cpuinfo") as f:  # decide XLA:CPU's kernels and so the rounding
            info = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines()
                        if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = " ".join([info.get("model name", cpu)] + [f"{key} {info[key]}" for key in
                                                         ("cpu family", "model") if key in info])
        isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")
               if f in info.get("flags", info.get("Features", "")).split()]
    except (OSError, ValueError):
        pass
    return {"cpu": cpu, "cpu_isa": isa, "cpu_cores": os.cpu_count(), "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind, "devices": jax.device_count(),
            "processes": jax.process_count(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "python": platform.python_version(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def glibc() -> bool:
    """Whether this process runs on glibc (Linux; not musl, not macOS)."""
    try:
        return "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or "")
    except (AttributeError, ValueError, OSError):  # no confstr, or no such name here
        return False


def set_malloc_options() -> bool:
    """Sets MALLOC_OPTIONS with glibc's mallopt, unless the user tuned malloc or the C
    library is not glibc; returns whether they are set."""
    tuned = ("glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
             or any(v in os.environ for v in MALLOC_VARIABLES))
    if tuned or not glibc():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    answers = [mallopt(param, value) for param, value in MALLOC_OPTIONS.values()]
    return all(a == 1 for a in answers)  # mallopt answers 1 when it took the option


def make_mesh() -> Mesh:
    """A 1-D mesh over all devices of all processes."""
    return Mesh(np.asarray(jax.devices()), (AXIS,))


class Runner:
    """Compiles `step(state, batch, frozen) -> (state, metrics)` for all devices; see the
    module doc. `frozen` is what the step reads but training never changes (a generator's
    parameters: `task.frozen`): it is placed on every device once and passed to the compiled
    step as an argument, so XLA does not fold it into the program as constants (which made
    compiling slower and the executable larger by the generator's size)."""

    def __init__(self, step: Callable, mode: str = "shard_map", frozen: Any = None):
        self.mode = mode
        self.mesh = make_mesh()
        self.replicated = NamedSharding(self.mesh, P())
        self.split = NamedSharding(self.mesh, P(AXIS))
        if mode == "shard_map":
            # check_vma=False: gradients of replicated params are summed by the step's
            # own psum, exactly as under pmap, so both modes run the same function.
            mapped = jax.shard_map(step, mesh=self.mesh, in_specs=(P(), P(AXIS), P()),
                                   out_specs=(P(), P()), check_vma=False)
            self._step = jax.jit(mapped, donate_argnums=0)
        elif mode == "pmap":
            self._step = jax.pmap(step, axis_name=AXIS, donate_argnums=0)
        else:
            raise ValueError(f"unknown parallel={mode!r}")
        frozen = {} if frozen is None else frozen
        if mode == "pmap":  # one copy per local device, put there once (not sent at every call)
            self.frozen = jax.pmap(lambda x: x)(self.put_state(frozen))
        else:
            self.frozen = jax.device_put(frozen, self.replicated)

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def put_state(self, state: Any) -> Any:
        """Global replicated state → the runner's layout (stacked per local device for pmap)."""
        if self.mode == "pmap":
            n = jax.local_device_count()
            return jax.tree.map(lambda x: np.broadcast_to(x, (n,) + x.shape).copy(),
                                jax.device_get(state))
        return jax.device_put(state, self.replicated)

    def get_state(self, state: Any) -> Any:
        """The runner's layout → global replicated arrays (what checkpoints store)."""
        if self.mode == "pmap":
            state = jax.device_get(jax.tree.map(lambda x: x[0], state))
        return jax.device_put(state, self.replicated)

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """This process's rows of the global batch → arrays split over all devices."""
        if self.mode == "pmap":
            n = jax.local_device_count()
            return {k: v.reshape((n, -1) + v.shape[1:]) for k, v in local_batch.items()}
        return {k: jax.make_array_from_process_local_data(self.split, v)
                for k, v in local_batch.items()}

    def __call__(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict]:
        return self._step(state, batch, self.frozen)

    def compile(self, state: Any, batch: dict[str, jax.Array]):
        """The step compiled ahead of time for these shapes: call it as
        `compiled(state, batch, runner.frozen)`; its cost_analysis() counts the step's FLOPs.
        (Calling the runner compiles again.)"""
        return self._step.lower(state, batch, self.frozen).compile()

    def metrics(self, metrics: dict) -> dict[str, float]:
        """Replicated device metrics → Python floats."""
        if self.mode == "pmap":
            metrics = jax.tree.map(lambda x: x[0], metrics)
        return {k: float(v) for k, v in jax.device_get(metrics).items()}


def initialize_distributed(coordinator: str | None, num_processes: int | None,
                           process_id: int | None, timeout: int = 300) -> None:
    """Joins a multi-process job when asked (or when SLURM / a TPU pod says so)."""
    if coordinator or num_processes or process_id is not None:
        if not (coordinator and num_processes and process_id is not None):
            raise UserError("multi-host needs all of --coordinator_address, --num_processes and "
                            "--process_id")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise UserError(f"--process_id={process_id} is out of range for "
                            f"--num_processes={num_processes} (0 ≤ id < N)")
        # Collectives between CPU processes (tests, CPU clusters); GPUs and TPUs ignore it.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        if process_id != 0:
            # JAX aborts the process when the coordinator never answers; say why first.
            _wait_for_coordinator(coordinator, timeout, process_id, num_processes)
        print(f"process {process_id}/{num_processes}: joining the job at {coordinator} "
              f"(waiting up to {timeout} s for every process)", flush=True)
        try:
            jax.distributed.initialize(coordinator, num_processes, process_id,
                                       initialization_timeout=timeout)
        except Exception as e:  # the coordinator never answered, or refused us
            raise UserError(f"could not join the job at {coordinator} as process {process_id} of "
                            f"{num_processes} within {timeout} s: {str(e).splitlines()[0]}") from e
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "," in os.environ.get(
            "TPU_WORKER_HOSTNAMES", ""):
        jax.distributed.initialize()


def _wait_for_coordinator(address: str, timeout: int, process_id: int, num_processes: int) -> None:
    """Returns once HOST:PORT accepts connections; a UserError after `timeout` seconds."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--coordinator_address={address!r} is not HOST:PORT")
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as e:
            if time.time() > deadline:
                raise UserError(f"could not join the job at {address} as process {process_id} of "
                                f"{num_processes} within {timeout} s: the coordinator never "
                                f"answered ({e.strerror or e})") from None
            time.sleep(0.5)
