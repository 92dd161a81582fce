"""Device-correct code, checked on a machine without a GPU (docs/devices.md).

Students run the course on CUDA GPUs (lab machines, Colab) and on Apple GPUs (MPS, picked by
``gencourse.device()`` on a Mac). Neither can run here, so three checks stand in for them:

1. Every course model trains, samples and is evaluated with the model placed through ``device()``
   (``load_or_train`` puts it there), on the CPU.
2. The same, on a **simulated accelerator**: tensors that report another device (``meta``) but hold their
   values in CPU memory, so the code really runs. It refuses what a real GPU refuses: mixing a tensor on the
   device with a CPU tensor in one operation (a CPU scalar tensor is fine, as on CUDA), ``.numpy()`` on a
   device tensor, a CPU random generator for a tensor made on the device; and what MPS refuses: float64
   tensors on the device, and the operators MPS lacks.
3. A static check of gencourse/ and of the notebooks' code cells: no float64 on the model's device
   (``.double()``, ``dtype=torch.float64``) unless the tensor is moved to the CPU in the same expression
   or made there, and no operator MPS lacks.

What only the device can tell (speed, memory, numerical differences, operators that exist but misbehave)
is run by ``python -m benchmarks.gpu_check`` on the first GPU available.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch
from IPython.core.inputtransformer2 import TransformerManager
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

import gencourse
import gencourse.config
import gencourse.train
from gencourse import data, diffusion, downstream, flows, gan, metrics, recipes, vae

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

# ---------------------------------------------------------------------------------------------
# A simulated accelerator
# ---------------------------------------------------------------------------------------------

ACCELERATOR = torch.device("meta")

# Operators that MPS does not implement for any dtype, as listed in torch 2.14's
# torch/testing/_internal/common_mps.py (UNIMPLEMENTED_XFAILLIST), by their aten names. Older torch
# releases lack more (torch>=2.2 is allowed): an op missing there shows up only on the device.
MPS_MISSING = {
    "logspace",
    "linalg_eig",
    "linalg_eigvals",
    "put",
    "put_",
    "frexp",
    "heaviside",
    "linalg_ldl_factor_ex",
    "linalg_ldl_solve",
    "ormqr",
    "take",
    "float_power",
    "mode",
    "special_airy_ai",
    "special_log_ndtr",
    "special_ndtri",
    "special_laguerre_polynomial_l",
    "special_legendre_polynomial_p",
    "_segment_reduce",
}
# Operators that may mix devices on a GPU: a copy between devices, and indexing a device tensor with CPU indices.
CROSS_DEVICE = {"copy_", "index", "index_put", "index_put_", "_index_put_impl_"}


class DeviceError(RuntimeError):
    """Code that would fail on a GPU (or on MPS) did something the simulated accelerator refuses."""


_RECORD: list[str] | None = None  # when a list: problems are recorded there, with _WHERE[0], and the code goes on
_WHERE = [""]


def refuse(message: str) -> None:
    """Raise :class:`DeviceError`, or record ``message`` and carry on (see :func:`simulated_accelerator`)."""
    if _RECORD is None:
        raise DeviceError(message)
    entry = f"{_WHERE[0]}: {message}" if _WHERE[0] else message
    if entry not in _RECORD:
        _RECORD.append(entry)


class OnAccelerator(torch.Tensor):
    """A tensor on the simulated accelerator: ``device`` is ``meta``, the values live in ``.elem`` (CPU)."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=ACCELERATOR,
            requires_grad=elem.requires_grad,
        )
        wrapper.elem = elem
        return wrapper

    def __repr__(self):
        return f"OnAccelerator({self.elem!r})"

    def numpy(self, *args, **kwargs):
        refuse("can't convert a tensor on the accelerator to numpy: call .cpu() first")
        return self.elem.numpy(*args, **kwargs)

    def tolist(self):  # a GPU copies the values to the host
        return self.elem.tolist()

    def __format__(self, spec):  # f"{loss:.3f}" of a one-value tensor reads it, as on a GPU
        return self.elem.__format__(spec)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise DeviceError(f"{func} ran on an accelerator tensor outside simulated_accelerator()")


def _target(kwargs: dict) -> str | None:
    device = kwargs.get("device")
    return None if device is None else torch.device(device).type


class SimulatedAccelerator(TorchDispatchMode):
    """Runs every operator on the CPU values of its tensors, and raises :class:`DeviceError` where a GPU would.

    ``mps=True`` adds MPS's limits: no float64 on the device, no operator in ``MPS_MISSING``."""

    def __init__(self, mps: bool = True):
        super().__init__()
        self.mps = mps

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.__name__.split(".")[0]
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_device = [t for t in tensors if isinstance(t, OnAccelerator)]
        target = _target(kwargs)
        if on_device and name not in CROSS_DEVICE:
            cpu = [tuple(t.shape) for t in tensors if not isinstance(t, OnAccelerator) and t.dim() > 0]
            if cpu:
                refuse(
                    f"{func} mixes tensors on the accelerator with CPU tensors of shapes {cpu}: "
                    "move them to the model's device first"
                )
        if target == ACCELERATOR.type and kwargs.get("generator") is not None:
            refuse(f"{func}: a CPU random generator cannot make a tensor on the accelerator")
        if self.mps and (on_device or target == ACCELERATOR.type) and name in MPS_MISSING:
            refuse(f"{func} is not implemented on MPS: run it on CPU tensors")
        unwrapped_args = tree_map(lambda t: t.elem if isinstance(t, OnAccelerator) else t, args)
        unwrapped_kwargs = tree_map(lambda t: t.elem if isinstance(t, OnAccelerator) else t, kwargs)
        if target == ACCELERATOR.type:
            unwrapped_kwargs["device"] = torch.device("cpu")
        out = func(*unwrapped_args, **unwrapped_kwargs)
        if name == "_local_scalar_dense" or not (target == ACCELERATOR.type or (on_device and target != "cpu")):
            return out
        if name == "copy_" and not isinstance(args[0], OnAccelerator):
            return args[0]  # a copy into a CPU tensor stays on the CPU

        def wrap(t):
            if not isinstance(t, torch.Tensor):
                return t
            if self.mps and t.dtype in (torch.float64, torch.complex128):
                refuse(
                    f"{func} makes a {t.dtype} tensor on the accelerator, and MPS has no float64: "
                    "compute in float32, or move the tensors to the CPU first"
                )
            for original, inner in zip(tree_flatten(args)[0], tree_flatten(unwrapped_args)[0]):
                if inner is t and isinstance(original, OnAccelerator):
                    return original  # an in-place operation returns its own input
            return OnAccelerator(t)

        return tree_map(wrap, out)


@contextlib.contextmanager
def simulated_accelerator(monkeypatch, mps: bool = True, record: list[str] | None = None):
    """``gencourse.device()`` is the simulated accelerator while this runs (so ``load_or_train`` puts the
    models there); models trained inside must be used inside. With a ``record`` list, each problem is appended
    to it (once per place, ``_WHERE[0]``) and the code goes on, computing on the CPU values: one run lists them
    all."""
    global _RECORD
    for module, name in ((gencourse.config, "device"), (gencourse, "device"), (gencourse.train, "default_device")):
        monkeypatch.setattr(module, name, lambda: ACCELERATOR)
    _RECORD = record
    try:
        with SimulatedAccelerator(mps=mps):
            yield ACCELERATOR
    finally:
        _RECORD, _WHERE[0] = None, ""


def test_the_simulated_accelerator_refuses_what_a_gpu_refuses(monkeypatch):
    with simulated_accelerator(monkeypatch) as dev:
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 36, 1)).to(dev)
        x = torch.rand(5, 1, 8, 8)
        loss = model(x.to(dev)).square().mean()  # right: the data is moved to the model's device
        loss.backward()
        torch.optim.Adam(model.parameters()).step()
        assert loss.device == dev and model[0].weight.grad.device == dev and torch.isfinite(loss).item()
        assert model(x.to(dev)).detach().cpu().numpy().shape == (5, 1)
        assert (torch.ones(3, device=dev) * torch.tensor(2.0)).sum().item() == 6.0  # CPU scalars are fine
        assert torch.ones(3, device=dev)[torch.tensor([0, 2])].shape == (2,)  # and CPU indices
        for wrong, message in [
            (lambda: model(x), "mixes tensors on the accelerator with CPU tensors"),
            (lambda: torch.ones(3, device=dev) + torch.ones(3), "mixes tensors"),
            (lambda: torch.ones(3, device=dev).numpy(), "call .cpu"),
            (lambda: torch.randn(3, device=dev, generator=torch.Generator()), "CPU random generator"),
            (lambda: torch.ones(3, device=dev).double(), "MPS has no float64"),
            (lambda: torch.zeros(3, device=dev, dtype=torch.float64), "MPS has no float64"),
            (lambda: torch.logspace(0, 1, 5, device=dev), "not implemented on MPS"),
        ]:
            with pytest.raises(DeviceError, match=message):
                wrong()
        assert torch.ones(3).double().dtype == torch.float64  # float64 on the CPU is fine


# ---------------------------------------------------------------------------------------------
# The models' methods that take data accept it where a notebook holds it: on the CPU
# ---------------------------------------------------------------------------------------------


def _data_methods():
    """(name, make the model, call) for every public method of the course's model classes that takes data:
    each call gets CPU tensors, as a notebook's test images are."""
    x01, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])

    def vae_model():
        return vae.VAE.mlp(latent_dim=2, hidden=(16,))

    def cvae():
        return vae.VAE.mlp(latent_dim=2, hidden=(16,), num_classes=3)

    def ae():
        return vae.Autoencoder(code_dim=2, hidden=(16,))

    def flow():
        return flows.coupling_flow_2d(num_layers=2, hidden=8)

    def ddpm():
        settings = recipes.diffusion.ddpm_settings(ch=8, num_classes=3)
        return diffusion.Diffusion(
            recipes.diffusion.mnist_diffusion_model(settings).net, diffusion.NoiseSchedule(10), (1, 28, 28), clip=1.0
        )

    return [
        ("VAE.encode", vae_model, lambda m: m.encode(x01)[0]),
        ("VAE.decode", vae_model, lambda m: m.decode(torch.randn(3, 2))),
        ("VAE.elbo", vae_model, lambda m: m.elbo(x01)),
        ("VAE.elbo_terms", vae_model, lambda m: m.elbo_terms(x01)[0]),
        ("VAE.log_px_given_z", vae_model, lambda m: m.log_px_given_z(x01, torch.randn(3, 2))),
        ("VAE.iwae_bound", vae_model, lambda m: m.iwae_bound(x01, 4)),
        ("VAE.reconstruct", vae_model, lambda m: m.reconstruct(x01)),
        ("conditional VAE.elbo", cvae, lambda m: m.elbo(x01, y)),
        ("conditional VAE.iwae_bound", cvae, lambda m: m.iwae_bound(x01, 4, y)),
        ("conditional VAE.decode", cvae, lambda m: m.decode(torch.randn(3, 2), y)),
        ("Autoencoder.encode", ae, lambda m: m.encode(x01)),
        ("Autoencoder.decode", ae, lambda m: m.decode(torch.randn(3, 2))),
        ("Autoencoder.forward", ae, lambda m: m(x01)),
        ("Autoencoder.loss", ae, lambda m: m.loss(x01)),
        ("Flow.forward", flow, lambda m: m(torch.randn(3, 2))[1]),
        ("Flow.inverse", flow, lambda m: m.inverse(torch.randn(3, 2))),
        ("Flow.log_prob", flow, lambda m: m.log_prob(torch.randn(3, 2))),
        ("Flow.trajectory", flow, lambda m: m.trajectory(torch.randn(3, 2))[-1]),
        ("Diffusion.loss", ddpm, lambda m: m.loss(2 * x01 - 1, y)),
    ]


@pytest.mark.parametrize("case", _data_methods(), ids=lambda case: case[0])
def test_a_model_on_the_device_takes_cpu_data_and_answers_on_its_device(case, monkeypatch):
    """``model.elbo(x_test)`` with the model on a GPU and ``x_test`` on the CPU works, as ``sample`` does: the
    model moves the data to its device; the result lives there (``.cpu()`` brings it back)."""
    _, make, call = case
    with simulated_accelerator(monkeypatch) as dev:
        out = call(make().to(dev))
        assert out.device == dev
        assert torch.isfinite(out.cpu()).all()


# ---------------------------------------------------------------------------------------------
# Every course model: trained through device() (load_or_train), sampled, evaluated
# ---------------------------------------------------------------------------------------------


# Every recipe trained for 2 steps on 256 images, with a 10-step diffusion schedule and few samples to score:
# the code paths and shapes of the smoke profile, in seconds.
TINY = dict(steps=2, n_train=256, n_eval=16, evaluations=1, T=10)


@pytest.fixture
def tiny_recipes(monkeypatch, tmp_cache):
    """Every ``*_settings`` function of the recipes returns its smoke settings with ``TINY`` on top."""

    def tiny(make):
        def settings(*args, **kwargs):
            made = make(*args, **kwargs)
            fields = {f.name for f in dataclasses.fields(made)}
            return dataclasses.replace(made, **{k: v for k, v in TINY.items() if k in fields})

        return settings

    for module in (recipes.gan, recipes.vae, recipes.flows, recipes.diffusion):
        for name in dir(module):
            if name.endswith("_settings") and callable(getattr(module, name)):
                monkeypatch.setattr(module, name, tiny(getattr(module, name)))
    metrics.reference_features()  # computed once per process, on the CPU (the judge's own device)


def _on(x: torch.Tensor, dev: torch.device) -> None:
    assert x.device.type == dev.type, f"expected a tensor on {dev}, got one on {x.device}"


def gan_points():
    return torch.cartesian_prod(torch.linspace(-3, 3, 4), torch.linspace(-3, 3, 4))


def _toy_gan(dev):
    model, history = recipes.gan.toy_gan("ring8", "pacgan")
    samples = model.sample(256)
    _on(samples, dev)
    assert metrics.mode_metrics(samples, data.toy2d_modes("ring8"))["num_modes"] == 8
    snapshots = gan.Snapshots(torch.randn(16, 2).to(dev), points=gan_points())
    snapshots(0, model)
    assert snapshots.frames[0]["logits"].device.type == "cpu"
    real = data.toy2d("ring8", 8).to(dev)
    assert gan.gradient_penalty(model.discriminator, real, model.sample(8)).item() >= 0
    assert "modes" in history


def _mnist_gan(recipe):
    def run(dev):
        model, history = recipe()
        labels = torch.arange(20) % 10 if model.num_classes else None
        samples = model.sample(20, labels=labels)
        _on(samples, dev)
        assert samples.shape == (20, 1, 28, 28)
        assert model.sample(z=torch.randn(4, model.latent_dim)).shape == (4, 1, 28, 28)  # a CPU z is moved
        if model.codes:
            assert model.sample(10, code=torch.arange(10)).shape == (10, 1, 28, 28)
            assert gan.code_digits(model, n_per_code=4).shape == (model.codes, 10)
        judge = metrics.judge()
        assert judge.predict(data.from_symmetric(samples)).shape == (20,)
        assert "fid" in history

    return run


def _vae(recipe, **kwargs):
    def run(dev):
        model, _ = recipe(**kwargs)
        x, y = data.mnist(train=False).tensors("unit", n=16)
        labels = y.to(dev) if getattr(model, "num_classes", 0) else None
        x = data.binarize(x).to(dev)
        if isinstance(model, vae.VAE):
            assert model.elbo(x, labels).shape == (16,)
            assert model.iwae_bound(x, 4, labels).shape == (16,)
            nll, _ = vae.estimate_nll(model, x.cpu(), k=4, y=None if labels is None else y, batch_size=8)
            assert nll > 0
            samples = model.sample(8, 3) if model.num_classes else model.sample(8)
            _on(samples, dev)
            assert model.reconstruct(x, labels).shape == x.shape
            if not model.num_classes:
                codes = model.encode(x)[0]
                _on(codes, dev)
        else:
            _on(model.decode(model.encode(x)), dev)

    return run


def _toy_flow(dev):
    model, _ = recipes.flows.toy2d_flow("moons")
    # a 2D flow is trained and kept on the CPU (recipes.flows.toy2d_flow), whatever device() says
    assert next(model.parameters()).device.type == "cpu"
    assert model.log_prob(data.toy2d("moons", 32)).shape == (32,)
    assert model.sample(32).device.type == "cpu"


def _mnist_flow(dev):
    model, _ = recipes.flows.mnist_flow()
    images = data.mnist(train=False).tensors("uint8", n=8)[0]
    assert flows.evaluate_bits_per_dim(model, images, batch_size=4) > 0
    x = data.dequantize(images).to(dev)
    assert model.log_prob(x).shape == (8,)
    samples = model.sample(4, temperature=0.7)
    _on(samples, dev)
    z, _ = model(x)
    assert model.inverse(z).shape == x.shape


def _ddpm(recipe):
    def run(dev):
        model, _ = recipe()
        labels = torch.arange(4) % 10 if model.num_classes else None
        ancestral = model.sample(4, y=labels)  # every step of the (smoke) schedule
        _on(ancestral, dev)
        kwargs = {"guidance": 2.0} if model.num_classes else {"autoguidance": 2.0}
        ddim = model.sample(4, steps=5, eta=1.0, y=labels, generator=torch.Generator().manual_seed(0), **kwargs)
        _on(ddim, dev)
        x0 = data.mnist(train=False).tensors("symmetric", n=4)
        loss = model.loss(x0[0].to(dev), x0[1].to(dev))
        assert loss.item() > 0

    return run


def _ddim_invert(dev):
    model, _ = recipes.diffusion.mnist_ddpm()
    real = data.mnist(train=False).tensors("symmetric", n=4)[0]  # CPU images, as notebook 07 inverts them
    latents = diffusion.ddim_invert(model.net, real, model.schedule, steps=5)
    _on(latents, dev)
    assert model.sample(4, steps=5, x_T=latents).shape == real.shape


def _latent_diffusion(dev):
    model, _ = recipes.diffusion.mnist_latent_diffusion()
    samples = model.sample(4, steps=5, eta=1.0)
    _on(samples, dev)
    assert model.encode(data.mnist(train=False).tensors("unit", n=4)[0].to(dev)).shape == (4, model.diffusion.shape[0])


def _semi_supervised(dev):
    model, _ = recipes.vae.mnist_vae()
    accuracy = downstream.semi_supervised_accuracy(model, per_class=1, draws=1, n_unlabelled=200, n_test=50)
    assert all(0 <= a.mean().item() <= 1 for a in accuracy.values())


# One case per code path: the registry's variants (betas, toy datasets) share theirs.
COURSE_MODEL_CASES = {
    "gan_toy2d": _toy_gan,
    "gan_dcgan_mnist": _mnist_gan(recipes.gan.dcgan_mnist),
    "gan_conditional_mnist": _mnist_gan(recipes.gan.conditional_gan_mnist),
    "gan_sngan_mnist": _mnist_gan(recipes.gan.sngan_mnist),
    "gan_infogan_mnist": _mnist_gan(recipes.gan.infogan_mnist),
    "ae_mnist_2d": _vae(recipes.vae.mnist_autoencoder_2d),
    "vae_mnist_2d": _vae(recipes.vae.mnist_vae_2d),
    "vae_mnist": _vae(recipes.vae.mnist_vae),
    "vae_mnist_beta": _vae(recipes.vae.mnist_beta_vae, beta=4.0, remedy="free_bits"),
    "cvae_mnist": _vae(recipes.vae.mnist_cvae),
    "vae_semi_supervised": _semi_supervised,
    "flow_toy2d": _toy_flow,
    "flow_mnist": _mnist_flow,
    "ddpm_mnist": _ddpm(recipes.diffusion.mnist_ddpm),
    "ddpm_ddim_invert": _ddim_invert,
    "latent_diffusion_mnist": _latent_diffusion,
}

# Known problems found by these tests, with the fix; each entry fails the test (strict xfail) once fixed.
AWAITING_FIX: dict[str, str] = {}


def test_every_course_model_has_a_device_case():
    toy = ("gan_ring8_", "gan_grid25_")  # the 2D GANs share one code path
    names = {"gan_toy2d" if name.startswith(toy) else name for name in recipes.COURSE_MODELS}
    missing = names - set(COURSE_MODEL_CASES)
    assert not missing, f"course models without a device case in tests/test_devices.py: {sorted(missing)}"


def _cases(device_kind: str):
    params = []
    for name in COURSE_MODEL_CASES:
        marks = []
        if device_kind == "simulated" and name in AWAITING_FIX:
            marks.append(pytest.mark.xfail(raises=DeviceError, strict=True, reason=AWAITING_FIX[name]))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _cases("cpu"))
def test_course_model_trains_samples_and_evaluates_on_the_cpu(name, tiny_recipes, monkeypatch):
    monkeypatch.setenv("GENCOURSE_DEVICE", "cpu")
    COURSE_MODEL_CASES[name](gencourse.device())


@pytest.mark.parametrize("name", _cases("simulated"))
def test_course_model_trains_samples_and_evaluates_on_a_simulated_accelerator(name, tiny_recipes, monkeypatch):
    with simulated_accelerator(monkeypatch) as dev:
        COURSE_MODEL_CASES[name](dev)


# ---------------------------------------------------------------------------------------------
# Static checks: float64 on the device, operators MPS lacks
# ---------------------------------------------------------------------------------------------

FLOAT64 = {"float64", "double", "complex128", "cdouble"}
MPS_MISSING_CALLS = {
    "logspace",
    "eig",
    "eigvals",
    "put",
    "put_",
    "frexp",
    "heaviside",
    "ldl_factor",
    "ldl_factor_ex",
    "ldl_solve",
    "ormqr",
    "take",
    "float_power",
    "mode",
    "airy_ai",
    "log_ndtr",
    "ndtri",
    "svd_lowrank",
}
FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn"}


def _chain_is_on_cpu(node: ast.AST) -> bool:
    """Whether ``node`` (an expression) moved its value to the CPU: ``... .cpu()`` or ``... .to("cpu")``
    somewhere in its method chain, or ``torch.device("cpu")`` passed to ``.to``."""
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "cpu" or (node.func.attr == "to" and "cpu" in ast.unparse(node)):
                return True
            if node.func.attr in ("numpy", "tolist", "item"):
                return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _is_float64(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in FLOAT64 and ast.unparse(node.value) == "torch"


def float64_problems(source: str) -> list[str]:
    """Where ``source`` may put float64 on the model's device (MPS has none): ``x.double()`` /
    ``x.to(torch.float64)`` / ``torch.as_tensor(x, dtype=torch.float64)`` on a tensor that was not moved to
    the CPU in the same expression. Factories without ``device=`` make CPU tensors, and are fine."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        dtype_args = [a for a in node.args if _is_float64(a)] + [
            k.value for k in node.keywords if k.arg == "dtype" and _is_float64(k.value)
        ]
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if name in ("double", "cdouble") and not node.args and receiver is not None:
            if not _chain_is_on_cpu(receiver):
                problems.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif dtype_args and name in FACTORIES and receiver is not None and ast.unparse(receiver) == "torch":
            if name in ("tensor", "as_tensor") and node.args and not _chain_is_on_cpu(node.args[0]):
                if not isinstance(node.args[0], (ast.Constant, ast.List, ast.Tuple)):
                    problems.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
            elif any(k.arg == "device" for k in node.keywords):
                problems.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif dtype_args and name in ("to", "type") and receiver is not None and not _chain_is_on_cpu(node):
            problems.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return problems


def mps_missing_problems(source: str) -> list[str]:
    """Calls of operators that MPS lacks (``MPS_MISSING_CALLS``) on anything but a CPU tensor. Fine: the
    factory ``torch.logspace`` without ``device=`` (it makes a CPU tensor), and a function of, or a method on,
    a value moved to the CPU in the same expression (``torch.linalg.eig(a.cpu())``, ``x.cpu().take(i)``)."""
    namespaces = ("torch", "torch.linalg", "torch.special")
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in MPS_MISSING_CALLS:
            continue
        if ast.unparse(node.func.value) in namespaces:
            if node.func.attr == "logspace":
                fine = not any(k.arg == "device" for k in node.keywords)
            else:
                fine = bool(node.args) and _chain_is_on_cpu(node.args[0])
        else:
            fine = _chain_is_on_cpu(node.func.value)
        if not fine:
            problems.append(f"line {node.lineno}: {ast.unparse(node)[:80]} is not implemented on MPS")
    return problems


def _python_sources():
    for path in sorted((REPO / "gencourse").rglob("*.py")):
        yield str(path.relative_to(REPO)), path.read_text()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                source = TransformerManager().transform_cell(cell.source)
                yield f"{path.relative_to(REPO)} cell {i}", source


# Uses the static check flags that await a fix: {file: {expression: the fix}}. An entry must go once fixed (the
# test then reports it as stale). Empty: bits_per_dim and notebooks 01 and 06 now compute float64 on the CPU.
AWAITING_STATIC_FIX: dict[str, dict[str, str]] = {}


def test_static_checks_find_what_they_look_for():
    assert float64_problems("y = model.double()\nz = x.to(torch.float64)\nw = torch.as_tensor(v, dtype=torch.double)")
    assert len(float64_problems("a = x.to(dev, torch.float64)\nb = torch.zeros(3, dtype=torch.float64, device=d)")) == 2
    fine = (
        "a = x.cpu().double()\nb = torch.linspace(0, 1, 5, dtype=torch.float64)\nc = x.detach().to('cpu').double()\n"
        "d = torch.tensor([1.0], dtype=torch.float64)\ne = x.to(torch.device('cpu'), torch.float64)"
    )
    assert float64_problems(fine) == []
    assert mps_missing_problems("y = x.float_power(2)\nz = torch.linalg.eig(a)\nw = torch.take(x, i)")
    assert len(mps_missing_problems("y = x.float_power(2)\nz = torch.linalg.eig(a)\nw = torch.take(x, i)")) == 3
    fine = "y = x.cpu().float_power(2)\nb = torch.logspace(0, 1, 5)\nc = torch.linalg.eig(a.cpu())"
    assert mps_missing_problems(fine) == []


def test_no_float64_or_missing_mps_operator_on_the_models_device():
    problems, unused = [], {file: set(expressions) for file, expressions in AWAITING_STATIC_FIX.items()}
    for where, source in _python_sources():
        file = where.split(" cell ")[0]
        for problem in float64_problems(source) + mps_missing_problems(source):
            expression = problem.split(": ", 1)[1].removesuffix(" is not implemented on MPS")
            if expression in AWAITING_STATIC_FIX.get(file, {}):
                unused[file].discard(expression)
                continue
            problems.append(f"{where}, {problem}")
    assert not problems, "may not run on MPS (move the tensors to the CPU first):\n  " + "\n  ".join(problems)
    stale = [f"{file}: {p}" for file, ps in unused.items() for p in ps]
    assert not stale, "exceptions that no longer match anything (remove them):\n  " + "\n  ".join(stale)


# ---------------------------------------------------------------------------------------------
# Hosted notebooks (Colab): the install block, the badges, the data root
# ---------------------------------------------------------------------------------------------


def _run_colab_block(monkeypatch, url: str, git_returncode: int | None = None):
    """Run ``colab_install_block(url)`` as on Colab, with ``git ls-remote`` answering ``git_returncode`` (None:
    the real git). Returns the pip commands it would have run."""
    pip, real_run = [], subprocess.run

    def run(command, *args, **kwargs):
        if command[0] != "git":
            pip.append(command)
            return subprocess.CompletedProcess(command, 0)
        if git_returncode is None:
            return real_run(command, *args, **kwargs)
        return subprocess.CompletedProcess(command, git_returncode, b"", b"")

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", run)
    exec(compile(gencourse.config.colab_install_block(url), "<setup cell>", "exec"), {"__name__": "__main__"})
    return pip


def test_the_colab_block_installs_from_the_published_address(monkeypatch):
    url = gencourse.config.repository_url()
    pip = _run_colab_block(monkeypatch, url, git_returncode=0)
    assert pip == [[sys.executable, "-m", "pip", "install", "-q", f"gencourse @ git+{url}"]]


def test_the_colab_block_says_what_to_fix_when_the_address_cannot_be_reached(monkeypatch, tmp_path):
    missing = (tmp_path / "no-such-repository").as_uri()  # the real git, offline: it cannot be reached either
    with pytest.raises(RuntimeError, match="cannot be reached. This address must point at where the course") as err:
        _run_colab_block(monkeypatch, missing)
    assert missing in str(err.value)


def test_the_colab_block_does_nothing_elsewhere(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    namespace = {"__name__": "__main__"}
    exec(gencourse.config.colab_install_block(), namespace)
    assert "REPOSITORY" not in namespace


def test_the_colab_badges_open_the_published_repository():
    """Colab opens a notebook from GitHub: colab.research.google.com/github/<owner>/<repo>/blob/<branch>/<path>."""
    url = gencourse.config.repository_url()
    github = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", url)
    badges = []
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        badges += [
            (doc.name, *m)
            for m in re.findall(
                r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/[^/]+/([^)\s]+)", doc.read_text()
            )
        ]
    assert badges, "no Colab badge found in README.md or docs/"
    for doc, repository, notebook in badges:
        assert github, f"{doc} has Colab badges, but Colab cannot open {url} (not a GitHub address)"
        assert repository == github.group(1), f"{doc}: a badge opens {repository}, the course is at {url}"
        assert (REPO / notebook).is_file(), f"{doc}: a badge opens {notebook}, which does not exist"


def test_an_installed_package_downloads_mnist_into_the_user_cache_on_first_use(monkeypatch, tmp_path):
    """On Colab the package sits in site-packages, with no data/ folder of a checkout beside it: MNIST is
    downloaded into ~/.cache/gencourse (here a temporary home), and found there the next time."""
    import torchvision.datasets

    site_packages = tmp_path / "site-packages"
    site_packages.mkdir()
    monkeypatch.setattr(gencourse.config, "REPO_ROOT", site_packages)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("GENCOURSE_DATA", raising=False)
    monkeypatch.delenv("GENCOURSE_CACHE", raising=False)
    root = tmp_path / "home" / ".cache" / "gencourse"
    assert gencourse.config.data_dir() == root and gencourse.config.cache_dir() == root / "cache"
    downloads = []

    class FakeMNIST:  # what torchvision.datasets.MNIST(root, train, download=True) leaves on disk, offline
        def __init__(self, folder, train=True, download=False):
            raw = Path(folder) / "MNIST" / "raw"
            if download:
                downloads.append(Path(folder))
                raw.mkdir(parents=True, exist_ok=True)
                for name, (magic, shape) in data.IDX_FILES.items():
                    with open(raw / name, "wb") as f:
                        f.write(b"".join(v.to_bytes(4, "big") for v in (magic, *shape)))
                        f.truncate(4 * (1 + len(shape)) + int(torch.tensor(shape).prod()))  # zeros: labels 0
            n = 60000 if train else 10000
            self.data, self.targets = torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    first = data.mnist(train=False)
    assert downloads == [root] and len(first) == 10000
    assert data.mnist(train=False) is not None and downloads == [root]  # found on disk: no second download


def test_a_checkout_keeps_its_data_folder(monkeypatch):
    monkeypatch.delenv("GENCOURSE_CACHE", raising=False)
    assert gencourse.config.data_dir() == REPO / "data"
    assert gencourse.config.cache_dir() == REPO / "data" / "cache"


# ---------------------------------------------------------------------------------------------
# The notebooks on the simulated accelerator (slow: opt-in)
# ---------------------------------------------------------------------------------------------

SIMULATE_NOTEBOOKS = os.environ.get("GENCOURSE_SIMULATE_NOTEBOOKS", "") == "1"


@pytest.mark.skipif(not SIMULATE_NOTEBOOKS, reason="slow: set GENCOURSE_SIMULATE_NOTEBOOKS=1 to run it")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_simulated_accelerator(path, tmp_cache, monkeypatch):
    """Every code cell of the notebook (smoke profile), in this process, with the course's models on the
    simulated accelerator. Every problem a student's GPU would stop at is listed with its cell (the run goes
    on past each one, computing on the CPU values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    monkeypatch.chdir(path.parent)
    metrics.reference_features()
    shell = InteractiveShell.instance()  # display handles and magics as in a kernel
    shell.reset()
    problems = []
    with simulated_accelerator(monkeypatch, record=problems):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code":
                continue
            _WHERE[0] = f"{path.name} cell {i} ({cell.source.strip().splitlines()[0][:60]!r})"
            result = shell.run_cell(cell.source, store_history=False)
            plt.close("all")
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                problems.append(f"{_WHERE[0]}: stopped the notebook: {type(error).__name__}: {error}")
                break
    assert not problems, "on a GPU this notebook would fail:\n  " + "\n  ".join(problems)
