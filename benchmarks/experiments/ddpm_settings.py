"""The pixel DDPM's training settings, screened with short runs: one training run keeps several EMAs of
the weights at once, and each (and the raw weights) is judged.

    python -m benchmarks.experiments.ddpm_settings [key=value ...]
    keys: the lecture settings' (gencourse.recipes.diffusion.ddpm_settings: lr, batch_size, steps, ch,
    schedule, min_snr, ...), plus emas=0.995,0.999 (the EMAs kept), n=1000 (samples judged per model,
    DDIM 50 steps, eta 1), seed=0, save=PATH (keep the last judged weights' state_dict), prediction=eps|v
    (v: the U-Net predicts the velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 of Salimans & Ho, read as
    eps = sqrt(abar) v + sqrt(1 - abar) x_t, so the loss and samplers are unchanged and the min-SNR weight
    becomes min(SNR, 5) / (SNR + 1) on v's error, Hang et al.'s weighting for v)
    e.g. OMP_NUM_THREADS=1 python -m benchmarks.experiments.ddpm_settings steps=1500 lr=4e-3

Prints one JSON line per judged model (the raw weights, then each EMA) and records it (labelled ``raw`` or
``EMA <decay>``, with the settings changed from the lecture configuration) in
``benchmarks/experiments/results/ddpm_settings.json`` (shown in ``docs/results.md``). The key=value overrides
apply to the lecture configuration of the day, which changed with these results: a recorded command reruns
what it measured only together with the record's ``changed`` settings.
"""

import dataclasses
import json
import sys
import time

import torch
from torch import nn

from benchmarks.experiments import judge_ddim, record
from gencourse import diffusion as D
from gencourse import seed_everything
from gencourse.data import mnist
from gencourse.nn import EMA
from gencourse.recipes import diffusion as R
from gencourse.train import fit, lr_schedule


class VPrediction(nn.Module):
    """A network that predicts v, read as a noise predictor: eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t."""

    def __init__(self, net: nn.Module, schedule: D.NoiseSchedule):
        super().__init__()
        self.net, self.T = net, schedule.T
        self.register_buffer("abar", schedule.alphas_cumprod.clone())

    @property
    def num_classes(self):
        return self.net.num_classes

    def forward(self, x, t, y=None):
        a = self.abar[(t * self.T).round().long()].view(-1, *[1] * (x.dim() - 1))
        return a.sqrt() * self.net(x, t, y) + (1 - a).sqrt() * x


def parse(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if "," in value:
        return tuple(parse(v) for v in value.split(","))
    return value


def main(argv):
    args = dict(a.split("=", 1) for a in argv)
    options = {k: parse(args.pop(k, d)) for k, d in (("emas", "0.995,0.999"), ("n", "1000"), ("seed", "0"))}
    save = args.pop("save", "")
    prediction = args.pop("prediction", "eps")
    if prediction not in ("eps", "v"):
        raise SystemExit(f"prediction must be eps or v, got {prediction!r}")
    defaults = R.ddpm_settings()
    names = sorted(f.name for f in dataclasses.fields(defaults))
    for key in args:
        if key not in names:
            raise SystemExit(f"unknown setting {key!r}; the settings are {names}")
    settings = dataclasses.replace(defaults, **{key: parse(value) for key, value in args.items()})
    emas = options["emas"] if isinstance(options["emas"], tuple) else (options["emas"],)
    seed_everything(options["seed"])
    model = R.mnist_diffusion_model(settings)
    if prediction == "v":
        model.net = VPrediction(model.net, model.schedule)
    averages = {decay: EMA(model, decay) for decay in emas}
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    for ema in averages.values():  # each average is updated after every optimizer step
        ema.attach(optimizer, model)
    data = mnist(train=True).loader(settings.batch_size, scale="symmetric", n=settings.n_train)
    start = time.time()
    fit(
        model,
        lambda m, b: m.loss(*b),
        data,
        steps=settings.steps,
        optimizer=optimizer,
        scheduler=lr_schedule(optimizer, settings.steps, settings.lr_schedule, warmup=settings.warmup),
        desc="ddpm",
    )
    train_s = time.time() - start
    before, after = dataclasses.asdict(defaults), dataclasses.asdict(settings)
    changed = {k: v for k, v in after.items() if v != before[k]} | ({"prediction": "v"} if prediction == "v" else {})
    for decay in (None, *emas):
        if decay is not None:
            averages[decay].copy_to(model)
        scores, sample_s = judge_ddim(model, options["n"])
        row = {"changed": changed, "ema": decay, "train_s": round(train_s), "sample_s": round(sample_s)}
        print(json.dumps({**row, "threads": torch.get_num_threads(), **scores}), flush=True)
        label = "raw" if decay is None else f"EMA {decay:g}"
        record(
            "ddpm_settings", {"label": label, "n": options["n"], **row, "threads": torch.get_num_threads(), **scores}
        )
    if save:  # the last EMA's weights (or the raw ones without an EMA), for further sampling
        torch.save(model.state_dict(), save)


if __name__ == "__main__":
    main(sys.argv[1:])
