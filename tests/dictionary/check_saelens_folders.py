"""Checks that folders mint writes follow SAELens's layout and run as SAELens runs them:
runs dictionary_write_saelens, then for each folder checks cfg.json's keys and the
tensors' names, dtypes and shapes (saelens_reference.check_layout, SAELens 6.18's rules:
a folder whose version is below 6.0.0 is read as a flat pre-6 config, so its nested
metadata would be lost), and compares SAELens's forward pass in float64 with mint's
codes and reconstructions.
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
    assert len(names) == 8, names
    for name in names:
        folder = os.path.join(out, name)
        cfg, w = ref.check_layout(folder)
        assert cfg["metadata"].get("hook_name") == "blocks.1.hook_resid_post", (name, cfg["metadata"])
        if name == "relu_scaled":  # the factor folded in, as SAELens's own fold leaves it
            assert cfg["normalize_activations"] == "none", cfg["normalize_activations"]
        if name == "legacy_round_trip":  # 4.x's TopK spelling, read as TopK; its sparsity kept
            assert cfg["architecture"] == "topk" and cfg["k"] == 6, (cfg["architecture"], cfg.get("k"))
            assert cfg["metadata"].get("model_name") == "mint-toy", cfg["metadata"]
            sparsity = ref.read_sparsity(folder)
            assert sparsity is not None, f"{name}: sparsity.safetensors was not written back"
            assert np.abs(sparsity - (-1.0 - 0.05 * np.arange(40))).max() < 1e-6, sparsity  # float32 values
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
