"""Integrated gradients at the token embeddings of the tour's toy transformer (examples/tour.cpp:
vocab 16, 24 positions, d_model 64, 2 attention-only layers of 4 heads of 16, pre-LN): mint against
the same attribution written plainly in PyTorch, same thread count, same run, repetitions
interleaved. The model is mint's (mint::toy::save writes it, with TransformerLens names, through
the attribution_mint driver, which also times mint's side on request); PyTorch reads the
safetensors file and runs the same forward (embeddings + positional embeddings, pre-LN attention
with 1/sqrt(d_head) scaling and a causal mask, exact-erf GELU MLP when there is one, final
LayerNorm, unembedding with bias). IG as Captum runs it by default: Gauss-Legendre with 50 points
on [0, 1] (numpy's leggauss mapped), zero baseline, every step a copy of the batch as rows, one
backward for activation gradients only, plus the metric at the input and at the baseline for the
completeness delta. Metric: mean over rows of logit[correct] - logit[wrong] at the last position.
The attributions must agree within 1e-4 of the largest |value| and the deltas within 1e-4 before
any time is printed. PyTorch runs mint's thread count in its OpenMP pool with its BLAS on the
calling thread (one pool, as mint; see main). Also times mint's attribution patching over every
site against mint's bare forward of the same batch (forward-equivalents).
Run: scripts/bench peers attribution_torch (or benchmarks/peers/run attribution_torch --build BUILD)."""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

# name: (vocab, context, d_model, layers, heads, d_head, d_mlp)
MODELS = {
    "tour": (16, 24, 64, 2, 4, 16, 0),
    "tour+mlp": (64, 32, 64, 2, 4, 16, 256),
}
STEPS = 50


def torch_ig(torch, model, tokens, correct, wrong, steps):
    """Returns ig(): integrated gradients at the embeddings -> (attributions [B, P, d], delta, value, baseline value)."""
    points, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor(0.5 * (points + 1.0), dtype=torch.float32).view(steps, 1, 1, 1)
    step_weights = torch.tensor(0.5 * weights, dtype=torch.float32).view(steps, 1)
    B, P = tokens.shape

    def logit_difference(logits):  # [n B, P, V] -> per row at the last position
        last = logits[:, -1, :]
        n_rows = torch.arange(last.shape[0])
        return last[n_rows, correct.repeat(last.shape[0] // B)] - last[n_rows, wrong.repeat(last.shape[0] // B)]

    def ig():
        x = model.W_E[tokens]  # hook_embed
        baseline = torch.zeros_like(x)
        with torch.no_grad():
            value = logit_difference(model.forward(x)).mean()
            baseline_value = logit_difference(model.forward(baseline)).mean()
        path = (baseline + alphas * (x - baseline)).reshape(steps * B, P, -1).requires_grad_()
        per_row = logit_difference(model.forward(path)).view(steps, B)
        (grad,) = torch.autograd.grad((per_row * step_weights).sum() / B, path)
        attributions = (x - baseline) * grad.view(steps, B, P, -1).sum(0)
        delta = attributions.double().sum() - (value.double() - baseline_value.double())
        return attributions, float(delta), float(value), float(baseline_value)

    return ig


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="prompts per IG call")
    parser.add_argument("--models", nargs="+", default=["tour"], choices=sorted(MODELS))
    parser.add_argument("--patch-batch", type=int, nargs="+", default=[8, 64], help="prompts per attribution patching call")
    parser.add_argument("--torch-threads", choices=sorted(common.TORCH_LAYOUTS), default="openmp",
                        help="where PyTorch's threads go (see common.TORCH_LAYOUTS)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))
    import torch

    # One of PyTorch's two pools gets the cores (both at 2 threads, they fight: PyTorch's IG ran
    # about 1.7x slower, and mint's next sample slower too); --torch-threads says which.
    print(common.set_torch_threads(args.torch_threads, threads))

    binary = os.path.join(args.build, "benchmarks", "attribution_mint")
    ig_rows, patch_rows = [], []
    folder = tempfile.mkdtemp(prefix="mint-attribution-peers-")
    try:
        for name in args.models:
            shape = MODELS[name]
            for batch in sorted(set(args.batch) | set(args.patch_batch)):
                sub = os.path.join(folder, f"{name}-{batch}")
                mint = common.MintDriver(binary, [sub, *shape, batch, STEPS])
                try:
                    if mint.info["threads"] != threads:
                        sys.exit(f"attribution_torch: mint runs {mint.info['threads']} threads, PyTorch {threads}")
                    if batch in args.batch:
                        model = common.TorchModel(torch, os.path.join(sub, "model.safetensors"))
                        load = lambda f: torch.tensor(np.load(os.path.join(sub, f)).astype(np.int64))  # noqa: E731
                        ig = torch_ig(torch, model, load("tokens.npy"), load("correct.npy"), load("wrong.npy"), STEPS)
                        values, delta, value, baseline_value = ig()
                        mint_values = np.load(os.path.join(sub, "ig.npy"))
                        scale = float(np.abs(mint_values).max())
                        error = float(np.abs(values.numpy() - mint_values).max()) / scale
                        for what, a, b in (("metric at the input", value, mint.info["value"]),
                                           ("metric at the baseline", baseline_value, mint.info["baseline_value"])):
                            if abs(a - b) > 1e-4 * max(1.0, abs(b)):
                                sys.exit(f"attribution_torch: {name} batch {batch}: {what} {b} in mint, {a} in PyTorch")
                        if not error <= 1e-4 or not abs(delta - mint.info["delta"]) <= 1e-4:
                            sys.exit(f"attribution_torch: {name} batch {batch}: attributions differ by {error:.2e} of the "
                                     f"largest |value| (<= 1e-4 needed), deltas {mint.info['delta']:.3e} in mint and "
                                     f"{delta:.3e} in PyTorch (within 1e-4 needed)")
                        m, t = common.interleaved(lambda n: mint.seconds("ig", n), lambda n: common.torch_seconds(ig, n),
                                           args.repeat, args.min_seconds)
                        ig_rows.append([name, str(batch), f"{m * 1e3:.2f} ms", f"{t * 1e3:.2f} ms", f"{m / t:.2f}",
                                        common.speedup(t, m), f"{error:.1e}", f"{mint.info['delta']:+.1e} / {delta:+.1e}"])
                    if batch in args.patch_batch:
                        p, f = common.interleaved(lambda n: mint.seconds("patch", n), lambda n: mint.seconds("forward", n),
                                           args.repeat, args.min_seconds)
                        patch_rows.append([name, str(batch), str(mint.info["patched_sites"]), f"{p * 1e3:.3f} ms",
                                           f"{f * 1e3:.3f} ms", f"{p / f:.2f}"])
                finally:
                    mint.close()
    finally:
        shutil.rmtree(folder)

    print(f"\nIntegrated gradients at hook_embed, Gauss-Legendre n = {STEPS}, zero baseline, logit difference, "
          f"{threads} threads; medians of {args.repeat} interleaved samples (attributions agree within 1e-4 of the "
          f"largest |value|, deltas within 1e-4)")
    common.print_table(["model", "batch", "mint", "PyTorch", "mint/torch", "speedup", "max err", "delta mint / torch"],
                       ig_rows)
    print("\nAttribution patching over every site against mint's bare forward of the same batch (goal <= 3.5)")
    common.print_table(["model", "batch", "sites", "patching", "forward", "forward-equivalents"], patch_rows)


if __name__ == "__main__":
    main()
