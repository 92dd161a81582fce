"""Measure the normalizing flows of notebook 06 against their targets.

    python -m benchmarks.flows --profile lecture            # the course models (trained or loaded)
    python -m benchmarks.flows --profile lecture --candidates  # also time candidate MNIST architectures

Targets: 2D moons test log-likelihood clearly above the best single Gaussian; MNIST test bits/dim
<= 1.5 in the lecture profile (<= 10 minutes of training on a 2-core CPU) and <= 1.10 in the full profile.
The models are the course's own (``gencourse.recipes.flows.toy2d_flow``, ``mnist_flow``), so the numbers
are the notebook's numbers. Training time is only measured when the cache is cold (``GENCOURSE_RETRAIN=1``
forces it).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from gencourse.nn import count_parameters

TARGET_BPD = {"smoke": None, "lecture": 1.5, "full": 1.10}


def toy2d_results() -> list[dict]:
    from gencourse import data, flows, recipes

    rows = []
    for name in ("moons", "checkerboard"):
        flow, history = recipes.flows.toy2d_flow(name)
        train, test = data.toy2d(name, 20_000, seed=1), data.toy2d(name, 20_000, seed=2)
        with torch.no_grad():
            ll_flow = flow.log_prob(test).mean().item()
        ll_gauss = flows.fit_gaussian(train).log_prob(test).mean().item()
        rows.append(
            dict(
                data=name,
                test_ll_flow=ll_flow,
                test_ll_best_gaussian=ll_gauss,
                gain_nats=ll_flow - ll_gauss,
                train_steps=history.meta.get("steps"),
                train_seconds=history.meta.get("train_seconds"),
                loaded_from_cache="loaded_from" in history.meta,
            )
        )
    return rows


def mnist_results(judge: bool) -> dict:
    from gencourse import data, flows, profile, recipes

    flow, history = recipes.flows.mnist_flow()
    test = data.mnist(train=False).tensors("uint8")[0]
    start = time.perf_counter()
    bpd = flows.evaluate_bits_per_dim(flow, test)
    row = dict(
        test_bpd=bpd,
        test_images=len(test),
        eval_seconds=time.perf_counter() - start,
        train_steps=history.meta.get("steps"),
        epochs=history.meta.get("epochs"),
        train_seconds=history.meta.get("train_seconds"),
        device=history.meta.get("device"),
        final_train_bpd=history.last("loss", 50),
        parameters=count_parameters(flow),
        loaded_from_cache="loaded_from" in history.meta,
    )
    if row["train_seconds"]:
        row["train_steps_per_second"] = row["train_steps"] / row["train_seconds"]
    if judge:
        row.update(judge_results(flow, profile().pick(smoke=200, lecture=10000, full=10000)))
    return row


def judge_results(flow, n: int) -> dict:
    """Judge scores of ``n`` samples per temperature."""
    from gencourse import metrics

    out = {}
    for temperature in (1.0, 0.7):
        torch.manual_seed(0)
        start = time.perf_counter()
        samples = torch.cat([flow.sample(min(250, n - i), temperature=temperature) for i in range(0, n, 250)])
        samples = samples.clamp(0, 1).cpu()
        seconds = time.perf_counter() - start
        scores = metrics.evaluate_samples(samples)
        out[f"judge_T{temperature}"] = {k: v for k, v in scores.items() if k != "class_counts"}
        out[f"judge_T{temperature}"]["sample_s_per_1000"] = round(1000 * seconds / n, 3)
    return out


def candidate_throughput(batch_size: int = 64, repeats: int = 5) -> list[dict]:
    """Training steps per second (wall and CPU time) of candidate MNIST architectures."""
    from gencourse import flows

    candidates = {
        "lecture: steps (4,4) hidden (32,64) blocks (1,2)": dict(steps=(4, 4), hidden=(32, 64), blocks=(1, 2)),
        "wider level 1: hidden (64,64) blocks (1,1)": dict(steps=(4, 4), hidden=(64, 64), blocks=(1, 1)),
        "deeper: steps (6,6) hidden (32,64) blocks (1,2)": dict(steps=(6, 6), hidden=(32, 64), blocks=(1, 2)),
        "full: steps (8,8) hidden (96,128) blocks (2,4)": dict(steps=(8, 8), hidden=(96, 128), blocks=(2, 4)),
    }
    x = torch.randint(0, 256, (batch_size, 1, 28, 28), dtype=torch.uint8)
    rows = []
    for name, arch in candidates.items():
        torch.manual_seed(0)
        model = flows.multiscale_flow((1, 28, 28), **arch).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        def step(model=model, opt=opt):
            loss = flows.dequantized_bpd_loss(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            step()
        wall, cpu = (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats
        rows.append(
            dict(
                arch=name,
                parameters=count_parameters(model),
                batch_size=batch_size,
                steps_per_second_wall=1 / wall,
                steps_per_second_cpu=1 / cpu,
            )
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["smoke", "lecture", "full"], default=None)
    parser.add_argument("--candidates", action="store_true", help="also time candidate MNIST architectures")
    parser.add_argument("--no-judge", action="store_true", help="skip the judge scores of samples")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["GENCOURSE_PROFILE"] = args.profile
    import gencourse

    print(gencourse.describe(), f"| threads {torch.get_num_threads()}")
    profile = gencourse.profile().name
    results: dict = {"profile": profile}
    if args.candidates:
        results["candidates"] = candidate_throughput()
        for row in results["candidates"]:
            print(
                f"  {row['arch']:<52} {row['parameters']:>9,} params  {row['steps_per_second_wall']:.2f} steps/s wall"
                f"  {row['steps_per_second_cpu']:.2f} steps/s CPU time (batch {row['batch_size']})"
            )

    results["toy2d"] = toy2d_results()
    for row in results["toy2d"]:
        print(
            f"{row['data']:>12}: test log-lik flow {row['test_ll_flow']:.3f} vs best Gaussian "
            f"{row['test_ll_best_gaussian']:.3f} nats/point (gain {row['gain_nats']:.3f})"
        )
    moons = results["toy2d"][0]
    print(
        f"  target (moons clearly better than the best Gaussian, gain > 1 nat): "
        f"{'MET' if moons['gain_nats'] > 1.0 else 'NOT MET'}"
    )

    results["mnist"] = mnist = mnist_results(judge=not args.no_judge)
    train_time = f"{mnist['train_seconds'] / 60:.1f} min" if mnist["train_seconds"] else "?"
    print(
        f"MNIST: test {mnist['test_bpd']:.4f} bits/dim on {mnist['test_images']} images; "
        f"{mnist['train_steps']} steps ({mnist['epochs']:.2f} epochs) in {train_time} on {mnist['device']}"
        f"{' (loaded from the cache: training time as recorded then)' if mnist['loaded_from_cache'] else ''}; "
        f"eval {mnist['eval_seconds']:.0f} s"
    )
    target = TARGET_BPD[profile]
    if target is not None:
        print(f"  target <= {target} bits/dim: {'MET' if mnist['test_bpd'] <= target else 'NOT MET'}")
    for key, scores in mnist.items():
        if key.startswith("judge"):
            print(f"  {key}: {scores}")
    save(profile, results)


def save(profile: str, results: dict) -> None:
    """Record the figures in the benchmark results (``benchmarks/results-<profile>.json``, ``results.md``)."""
    from benchmarks import results as store

    toy = {
        f"flow_{row['data']}": {
            "train_s": row["train_seconds"] and round(row["train_seconds"], 1),
            "train_steps": row["train_steps"],
            "test_ll_nats": round(row["test_ll_flow"], 3),
            "best_gaussian_ll_nats": round(row["test_ll_best_gaussian"], 3),
            "gain_nats": round(row["gain_nats"], 3),
        }
        for row in results["toy2d"]
    }
    store.save(profile, "toy2d", toy)
    mnist = results["mnist"]
    row = {
        "train_s": mnist["train_seconds"] and round(mnist["train_seconds"], 1),
        "train_steps": mnist["train_steps"],
        "epochs": mnist["epochs"] and round(mnist["epochs"], 2),
        "cached": mnist["loaded_from_cache"],
        "bits_per_dim": round(mnist["test_bpd"], 4),
        "n_test": mnist["test_images"],
        "parameters": mnist["parameters"],
    }
    row["nll_nats"] = round(mnist["test_bpd"] * 784 * math.log(2), 1)
    rows = {"flow_mnist": row}
    for key, scores in mnist.items():
        if key.startswith("judge_T") and isinstance(scores, dict):
            temperature = key.removeprefix("judge_T")
            sample_row = {name: value for name, value in scores.items() if name != "n"}
            sample_row["n_samples"] = scores["n"]
            if temperature == "1.0":
                row.update(sample_row)
            else:
                rows[f"flow_mnist (temperature {temperature})"] = sample_row
    store.save(profile, "models", rows)
    print(f"written to {store.path(profile)}")


if __name__ == "__main__":
    main()
