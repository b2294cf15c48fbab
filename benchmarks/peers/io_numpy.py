"""Reading a 1 GiB float32 array: mint (copied into an owned array, and
memory-mapped) against NumPy (np.load, and np.load(mmap_mode='r'); for
safetensors np.fromfile and np.memmap past the header, the NumPy way without
the safetensors package), in the same run. Each side opens the file and sums
every element (float64 accumulation), so both touch all the data; the sums must
agree to 1e-6 (relative: NumPy sums pairwise, mint in order). The files are
made in a temporary folder (free space checked first) and removed afterwards;
the page cache is warm. Run: scripts/bench peers io_numpy [--mib 1024]"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


def mint_times(binary, folder, mib):
    env = dict(os.environ, MINT_IO_BENCH_DIR=folder, MINT_IO_BENCH_MIB=str(mib))
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_repetitions=3",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True, env=env).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            result[b["run_name"].split("/")[0]] = (b["real_time"] * 1e-3, b["sum"])
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))

    base = tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    need = 2 * args.mib * 2**20 + 2**30
    if free < need:
        sys.exit(f"io_numpy: {free / 2**30:.1f} GiB free in {base}; needs {need / 2**30:.1f} GiB")
    folder = tempfile.mkdtemp(prefix="mint-io-peers-")
    try:
        # The same bytes mint's bench would write: rows of 1024 floats, k % 1000 * 0.001.
        rows = args.mib * 256
        a = ((np.arange(rows * 1024, dtype=np.int64) % 1000).astype(np.float32) * np.float32(0.001)).reshape(rows, 1024)
        npy, st = os.path.join(folder, "big.npy"), os.path.join(folder, "big.safetensors")
        np.save(npy, a)
        header = json.dumps({"x": {"dtype": "F32", "shape": list(a.shape), "data_offsets": [0, a.nbytes]}}).encode()
        header += b" " * (-len(header) % 8)
        with open(st, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header)
            a.tofile(f)
        del a
        offset = 8 + len(header)

        mint = mint_times(os.path.join(args.build, "benchmarks", "bench_io"), folder, args.mib)
        peers = {
            "npy_read": ("np.load", lambda: np.load(npy).sum(dtype=np.float64)),
            "npy_map": ("np.load(mmap_mode='r')", lambda: np.load(npy, mmap_mode="r").sum(dtype=np.float64)),
            "safetensors_read": ("np.fromfile", lambda: np.fromfile(st, dtype="<f4", offset=offset).sum(dtype=np.float64)),
            "safetensors_map": ("np.memmap", lambda: np.memmap(st, dtype="<f4", mode="r", offset=offset).sum(dtype=np.float64)),
        }
        rows_out = []
        for name, (peer_name, fn) in peers.items():
            peer_sum = float(fn())
            mint_seconds, mint_sum = mint[name]
            if abs(peer_sum - mint_sum) > 1e-6 * abs(peer_sum):
                sys.exit(f"io_numpy: {name}: mint sums {mint_sum}, NumPy {peer_sum}")
            peer_seconds = common.best_seconds(fn, repeat=3, min_seconds=0.1)
            rows_out.append([name, f"{mint_seconds * 1e3:.0f} ms", peer_name, f"{peer_seconds * 1e3:.0f} ms",
                             common.speedup(peer_seconds, mint_seconds)])
        print(f"{args.mib} MiB of float32, open + sum of every element; sums agree to 1e-6")
        common.print_table(["mint", "time", "NumPy", "time", "mint speedup"], rows_out)
        print(f"mint mapped vs mint copied: npy {common.speedup(mint['npy_read'][0], mint['npy_map'][0])}, "
              f"safetensors {common.speedup(mint['safetensors_read'][0], mint['safetensors_map'][0])}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


main()
