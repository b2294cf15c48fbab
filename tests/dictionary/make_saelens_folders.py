"""Writes SAELens folders the way Python code following SAELens's layout does, for
the dictionary tests to load: every architecture, every normalize_activations mode
a folder can carry, a flat pre-6 config, a 4.x TopK config (architecture "standard"
with a topk activation), BF16 weights, an unknown key. Each folder
also gets x.npy (inputs) and, from saelens_reference.forward in float64, z.npy
(codes) and x_hat.npy (reconstructions). Usage: make_saelens_folders.py OUT STAMP"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import saelens_reference as ref  # noqa: E402

D, M, N = 12, 40, 16


def weights(arch, rng):
    w = {"W_enc": rng.normal(0, 0.4, (D, M)), "W_dec": rng.normal(0, 0.4, (M, D)), "b_dec": rng.normal(0, 0.2, D)}
    if arch == "gated":
        w.update(b_gate=rng.normal(0, 0.3, M), b_mag=rng.normal(0, 0.3, M), r_mag=rng.normal(0, 0.3, M))
    else:
        w["b_enc"] = rng.normal(0, 0.3, M)
    if arch == "jumprelu":
        w["threshold"] = rng.uniform(0.05, 0.6, M)
    return {k: v.astype(np.float32) for k, v in w.items()}


def v6(arch, **extra):
    cfg = {"d_in": D, "d_sae": M, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "architecture": arch, "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.12.0", "model_name": "gpt2", "hook_name": "blocks.3.hook_resid_pre",
                        "hook_head_index": None, "context_size": 128, "prepend_bos": True}}
    cfg.update(extra)
    return cfg


FOLDERS = {
    "standard": (v6("standard"), "F32"),
    "topk": (v6("topk", k=5, rescale_acts_by_decoder_norm=False), "F32"),
    "topk_rescaled": (v6("topk", k=5, rescale_acts_by_decoder_norm=True), "F32"),
    "jumprelu": (v6("jumprelu"), "F32"),
    "gated": (v6("gated"), "F32"),
    "no_b_dec_input": (v6("standard", apply_b_dec_to_input=False), "F32"),
    "constant_norm_rescale": (v6("jumprelu", normalize_activations="constant_norm_rescale"), "F32"),
    "layer_norm": (v6("standard", normalize_activations="layer_norm"), "F32"),
    "expected_average": (v6("standard", normalize_activations="expected_average_only_in"), "F32"),
    "bf16": (v6("standard", dtype="torch.bfloat16", my_own_key={"kept": [1, 2, 3]}), "BF16"),
    "legacy_flat": ({"d_in": D, "d_sae": M, "dtype": "torch.float32", "device": "cpu", "model_name": "gpt2-small",
                     "hook_point": "blocks.5.hook_resid_post", "hook_point_layer": 5, "hook_point_head_index": None,
                     "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 7}, "normalize_activations": False,
                     "context_size": 64, "finetuning_scaling_factor": False, "sae_lens_version": "3.4.0",
                     "sae_lens_training_version": "3.4.0"},
                    "F32"),
    # SAELens 4.x's TopK: architecture "standard" beside activation_fn_str "topk" (TopK by 6.12.3's rules).
    "legacy_topk_standard": ({"architecture": "standard", "d_in": D, "d_sae": M, "dtype": "float32", "device": "cpu",
                              "model_name": "gpt2", "hook_name": "blocks.2.hook_resid_post", "hook_layer": 2,
                              "hook_head_index": None, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 6},
                              "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
                              "normalize_activations": "none", "context_size": 128,
                              "sae_lens_training_version": "4.4.1"},
                             "F32"),
}


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(20261125)
    for name, (cfg, dtype) in FOLDERS.items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        arch = ref.upgrade(cfg)["architecture"]
        w = weights(arch, rng)
        tensors = dict(w)
        if name == "legacy_flat":
            tensors["scaling_factor"] = np.ones(M, np.float32)
        ref.write_safetensors(os.path.join(folder, "sae_weights.safetensors"), tensors, dtype)
        if name == "standard":
            sparsity = np.log10(rng.uniform(1e-6, 1, M) + 1e-10).astype(np.float32)
            ref.write_safetensors(os.path.join(folder, "sparsity.safetensors"), {"sparsity": sparsity})
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        # The reference runs on the weights as stored (BF16 rounding included).
        cfg_read, w_read = ref.read_folder(folder)
        x = rng.normal(0, 1, (N, D)).astype(np.float32)
        z, x_hat = ref.forward(cfg_read, w_read, x)
        np.save(os.path.join(folder, "x.npy"), x)
        np.save(os.path.join(folder, "z.npy"), z)
        np.save(os.path.join(folder, "x_hat.npy"), x_hat)
    with open(stamp, "w") as f:
        f.write("ok\n")


main()
