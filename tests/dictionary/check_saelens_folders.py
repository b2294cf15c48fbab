"""Checks that folders mint writes follow SAELens's layout and run as SAELens runs them:
runs dictionary_write_saelens, then for each folder checks cfg.json's keys and the
tensors' names, dtypes and shapes (saelens_reference.check_layout), and compares
SAELens's forward pass in float64 with mint's codes and reconstructions.
Usage: check_saelens_folders.py WRITER FOLDER"""

import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import saelens_reference as ref  # noqa: E402


def main():
    writer, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    subprocess.run([writer, out], check=True)
    names = sorted(os.listdir(out))
    assert len(names) == 7, names
    for name in names:
        folder = os.path.join(out, name)
        cfg, w = ref.check_layout(folder)
        assert cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post", name
        x = np.load(os.path.join(folder, "x.npy"))
        z, x_hat = ref.forward(cfg, w, x)
        mint_z = np.load(os.path.join(folder, "mint_z.npy"))
        mint_x_hat = np.load(os.path.join(folder, "mint_x_hat.npy"))
        # mint computes in float32 (products of 12 terms ~1): 1e-4 absolute is ~100 ulps.
        assert np.array_equal(z > 0, mint_z > 0), f"{name}: different latents fire"
        assert np.abs(z - mint_z).max() < 1e-4, (name, np.abs(z - mint_z).max())
        assert np.abs(x_hat - mint_x_hat).max() < 1e-4, (name, np.abs(x_hat - mint_x_hat).max())
        print(f"{name:16s} {cfg['architecture']:9s} codes and reconstructions match SAELens's rules")
    print(f"{len(names)} passed, 0 failed")


main()
