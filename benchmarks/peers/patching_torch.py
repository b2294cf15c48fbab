"""benchmarks/patching.cpp's activation-patching sweep, mint against the same sweep written in
plain PyTorch with forward hooks, same thread count, same run. The sweep: every block's hook_z by
position and head, denoising (the corrupt run with one head's clean output at one position
patched in), normalised (patched - corrupt) / (clean - corrupt): 4 blocks x 64 positions x 8
heads = 2048 values, on the 4-layer toy transformer (vocab 64, d_model 256, 8 heads of 32, d_mlp
1024, exact-erf GELU, pre-LN), batch 16 random prompts of 64 tokens, the corrupt ones with
positions 5, 30 and 50 changed. Metric: mint::logit_difference, the mean over rows of
logit[correct] - logit[wrong] at the last position (per-row tokens), for the clean task on
every run.

The model, tokens and targets are mint's (the patching_mint driver builds them as
benchmarks/patching.cpp does, saves them, sweeps once and times mint's side on request).
PyTorch reads them (common.TorchModel: hook points as TransformerLens names them) and sweeps as
a careful PyTorch user would: no autograd, the clean run's hook_z cached once by forward hooks,
then per block the patches as copies of the corrupt batch in one forward (8 patches x 16 rows by
default, mint's max_batch), a forward hook on the block's hook_z writing each copy's clean
(position, head) slice. mint runs the same copies per forward and also skips what a patch cannot
change (the blocks before it; in its block and after, the positions before it). --plain adds mint
without that (whole forwards, as PyTorch); --resumed adds PyTorch starting each patched forward
at the patched block from the corrupt run's cached hook_resid_pre. The values must agree within
1e-3 of the span (absolute, on the normalised values; measured 5e-5) and the clean and corrupt
metrics within 1e-4 before any time is printed.

PyTorch's threads (--torch-threads): by default its BLAS (OpenBLAS) runs the thread count and
its OpenMP pool 1 thread. Measured on 2 cores, a bare forward of 16 x 64 tokens took 53-68 ms
that way, 75-77 ms with attribution_torch.py's layout (OpenMP pool on 2, BLAS on the calling
thread: this model's products then run on one core) and 80-146 ms with both pools on 2 (they
fight). PyTorch runs one patch per forward faster than 8 (--torch-patches-per-forward 1: 16-row
forwards ran 53 ms per 16 rows, 128-row ones 79); the default still gives it mint's rows per
forward. Each sweep takes tens of seconds to minutes, so by default the agreement run is the one
timed sample (mint's is its first sweep, run by the driver just before; first and later sweeps
measured within 3%); --repeat N adds N interleaved samples of each, the median is printed.
Run: scripts/bench peers patching_torch (or benchmarks/peers/run patching_torch --build BUILD);
about 3.5 minutes on 2 cores."""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

TOLERANCE = 1e-3  # on the normalised values: float32 logits of order 1 differ by ~1e-7 between kernels; the span is ~0.01


def torch_sweep(torch, model, clean, corrupt, correct, wrong, per_forward, resumed=False):
    """Returns sweep(): the head x position sweep at every block's hook_z -> (values [layer, pos, head]
    normalised, clean value, corrupt value)."""
    B, P = clean.shape
    L, H, dh = model.c["layers"], model.c["heads"], model.c["d_head"]
    rows = torch.arange(B)
    patches = [(p, h) for p in range(P) for h in range(H)]  # hook_z's [pos, head] order
    chunks = []  # per forward: (copies, positions, heads)
    for start in range(0, len(patches), per_forward):
        chunk = patches[start:start + per_forward]
        chunks.append((len(chunk), torch.tensor([p for p, _ in chunk]), torch.tensor([h for _, h in chunk])))
    copies = torch.arange(per_forward)

    def metric(logits):  # [k B, P, V] -> [k]: logit_difference of each copy of the batch (mean over its rows)
        last = logits[:, -1, :].reshape(-1, B, logits.shape[-1])
        return (last[:, rows, correct] - last[:, rows, wrong]).double().mean(1)

    def run_with_cache(tokens, names):
        cache, handles = {}, []
        for name in names:
            handles.append(model.hooks[name].register_forward_hook(
                lambda module, inputs, output, name=name: cache.__setitem__(name, output)))
        try:
            logits = model.forward(model.W_E[tokens])
        finally:
            for h in handles:
                h.remove()
        return logits, cache

    def sweep():
        with torch.no_grad():
            z_names = [f"blocks.{l}.attn.hook_z" for l in range(L)]
            clean_logits, clean_cache = run_with_cache(clean, z_names)
            resid_names = [f"blocks.{l}.hook_resid_pre" for l in range(L)] if resumed else []
            corrupt_logits, corrupt_cache = run_with_cache(corrupt, resid_names)
            clean_value, corrupt_value = float(metric(clean_logits)), float(metric(corrupt_logits))
            span = clean_value - corrupt_value
            values = torch.empty(L, len(patches), dtype=torch.float64)
            embed = model.W_E[corrupt.repeat(per_forward, 1)]  # the corrupt batch, per_forward copies as rows
            for l in range(L):
                source = clean_cache[z_names[l]]  # [B, P, H, dh]
                if resumed:
                    resid = corrupt_cache[f"blocks.{l}.hook_resid_pre"].repeat(per_forward, 1, 1)
                now = {}

                def patch(module, inputs, z):  # z [k B, P, H, dh]: copy i gets the clean z at (pos[i], head[i])
                    k, pos, head = now["chunk"]
                    z.view(k, B, P, H, dh)[copies[:k], :, pos, head] = source[:, pos, head].transpose(0, 1)
                    return z

                handle = model.hooks[z_names[l]].register_forward_hook(patch)
                try:
                    done = 0
                    for chunk in chunks:
                        now["chunk"] = chunk
                        k = chunk[0]
                        logits = model.forward_from(l, resid[:k * B]) if resumed else model.forward(embed[:k * B])
                        values[l, done:done + k] = metric(logits)
                        done += k
                finally:
                    handle.remove()
            return ((values - corrupt_value) / span).reshape(L, P, H).numpy(), clean_value, corrupt_value

    return sweep


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--patches-per-forward", type=int, default=8,
                        help="copies of the batch per forward (mint's max_batch / 16, and PyTorch's unless told)")
    parser.add_argument("--torch-patches-per-forward", type=int, default=0, help="PyTorch's, when not mint's")
    parser.add_argument("--torch-threads", choices=sorted(common.TORCH_LAYOUTS), default="blas",
                        help="where PyTorch's threads go (blas: fastest here, see the docstring)")
    parser.add_argument("--repeat", type=int, default=0,
                        help="timed, interleaved samples of each after the agreement run (itself the first sample)")
    parser.add_argument("--resumed", action="store_true",
                        help="also time PyTorch starting each patched forward at the patched block")
    parser.add_argument("--plain", action="store_true",
                        help="also time mint's sweep on the model seen as a plain runtime (whole forwards)")
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))
    import torch

    print(common.set_torch_threads(args.torch_threads, threads))
    layout = common.TORCH_LAYOUTS[args.torch_threads].format(t=threads)
    per_forward = args.patches_per_forward
    torch_per_forward = args.torch_patches_per_forward or per_forward

    binary = os.path.join(args.build, "benchmarks", "patching_mint")
    folder = tempfile.mkdtemp(prefix="mint-patching-peers-")
    patches = lambda n: f"{n} patch{'' if n == 1 else 'es'} per forward"  # noqa: E731
    mint_name = f"mint (toy transformer: prefix reuse), {patches(per_forward)}"
    plain_name = f"mint, plain runtime (whole forwards), {patches(per_forward)}"
    torch_name = f"PyTorch, hooks, {patches(torch_per_forward)}"
    resumed_name = f"PyTorch, hooks, {patches(torch_per_forward)}, resumed at the block"
    try:
        mint = common.MintDriver(binary, [folder, per_forward])  # builds, saves and sweeps once
        try:
            info = mint.info
            if info["threads"] != threads:
                sys.exit(f"patching_torch: mint runs {info['threads']} threads, PyTorch {threads}")
            model = common.TorchModel(torch, os.path.join(folder, "model.safetensors"))
            load = lambda f: torch.tensor(np.load(os.path.join(folder, f)).astype(np.int64))  # noqa: E731
            inputs = [load(f) for f in ("clean.npy", "corrupt.npy", "correct.npy", "wrong.npy")]
            ways = {torch_name: torch_sweep(torch, model, *inputs, torch_per_forward)}
            if args.resumed:
                ways[resumed_name] = torch_sweep(torch, model, *inputs, torch_per_forward, resumed=True)
            mint_values = np.load(os.path.join(folder, "values.npy"))
            span = info["clean_value"] - info["corrupt_value"]

            # The agreement run, every PyTorch way against mint's values; also the first timed sample
            # (mint's is its first sweep, run by the driver just before).
            samples = {mint_name: [info["first_seconds"]]}
            errors = {}
            for name, sweep in ways.items():
                start = time.perf_counter()
                values, clean_value, corrupt_value = sweep()
                samples[name] = [time.perf_counter() - start]
                for what, a, b in (("clean", clean_value, info["clean_value"]),
                                   ("corrupt", corrupt_value, info["corrupt_value"])):
                    if not abs(a - b) <= 1e-4 * max(1.0, abs(b)):
                        sys.exit(f"patching_torch: {name}: the {what} run's metric is {b} in mint, {a} in PyTorch")
                difference = np.abs(values - mint_values)
                errors[name] = float(difference.max())
                if not errors[name] <= TOLERANCE:
                    i = np.unravel_index(difference.argmax(), values.shape)
                    sys.exit(f"patching_torch: {name}: values differ from mint's by up to {errors[name]:.2e} of the "
                             f"span (<= {TOLERANCE} needed), at layer {i[0]} pos {i[1]} head {i[2]}: mint "
                             f"{mint_values[i]:.6f}, PyTorch {values[i]:.6f}")
                print(f"{name}: agrees with mint, max |difference| {errors[name]:.1e} of the span; "
                      f"{samples[name][0]:.1f} s (mint {info['first_seconds']:.1f} s)", flush=True)

            # Further samples, interleaved.
            calls = {mint_name: lambda: mint.seconds("sweep", 1)}
            if args.plain:
                samples[plain_name] = []
                calls[plain_name] = lambda: mint.seconds("plain", 1)
            calls.update({name: (lambda sweep=sweep: common.torch_seconds(sweep, 1)) for name, sweep in ways.items()})
            for r in range(max(args.repeat, 1 if args.plain else 0)):
                for name, call in calls.items():
                    if r < args.repeat or not samples[name]:
                        samples[name].append(call())
            order = [mint_name] + ([plain_name] if args.plain else []) + list(ways)
            seconds = {name: statistics.median(samples[name]) for name in order}

            # One bare forward of the corrupt batch on each side, for forward-equivalents.
            mint_forward = mint.seconds("forward", max(1, int(1.0 / max(mint.seconds("forward", 1), 1e-9))))
            with torch.no_grad():
                bare = lambda: model.forward(model.W_E[inputs[1]])  # noqa: E731
                torch_forward = common.torch_seconds(bare, max(1, int(1.0 / max(common.torch_seconds(bare, 1), 1e-9))))
        finally:
            mint.close()
    finally:
        shutil.rmtree(folder)

    mint_time, torch_time = seconds[mint_name], seconds[torch_name]
    print(f"\nActivation patching: hook_z by position and head at 4 blocks ({info['patches']} patches), denoising, "
          f"normalised, batch 16 x 64 tokens; {threads} threads, PyTorch {layout}, torch {torch.__version__}; "
          f"median of {1 + args.repeat} sample(s) (the first the agreement run), interleaved; values agree within "
          f"{TOLERANCE} of the span ({span:.4f})")
    rows = []
    for name, s in seconds.items():
        own = mint_forward if name.startswith("mint") else torch_forward
        rows.append([name, f"{s:.1f} s", f"{s / own:.0f}", f"{s / mint_time:.2f}",
                     f"{errors[name]:.1e}" if name in errors else "-"])
    common.print_table(["sweep", "time", "forward-equivalents (own forward)", "time / mint's", "max |diff|"], rows)
    print(f"\nbare forward of the corrupt batch (16 x 64): mint {mint_forward * 1e3:.1f} ms, "
          f"PyTorch {torch_forward * 1e3:.1f} ms")
    print(f"mint {mint_time:.1f} s, PyTorch {torch_time:.1f} s: mint {common.speedup(torch_time, mint_time)} faster "
          f"(goal >= 5x); max |difference| {errors[torch_name]:.1e} of the span; {threads} threads; "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
