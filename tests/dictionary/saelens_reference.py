"""SAELens's folder layout and forward pass, written from its documented rules (see
../shared/REFERENCES.md, "SAELens on disk") with NumPy only, so the tests need no
torch or sae_lens. The rules are SAELens 6.18's: read_folder() loads a folder as its
loader does (upgrading a config without a version, or older than 6.0.0, from the flat
pre-6 layout), forward() runs its encode and decode in float64, and check_layout() checks
a folder against what the loader insists on. Safetensors are read and written here by
hand: an 8-byte little-endian header length, a JSON header, the data."""

import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
import make_numpy_files  # noqa: E402  (its safetensors writer)

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": "bf16"}


def write_safetensors(path, tensors, dtype="F32"):
    """Every tensor as float32 (F32) or rounded to bfloat16 (BF16), through the io tests' writer."""
    stored = {}
    for name, value in tensors.items():
        a = np.ascontiguousarray(value, dtype=np.float32)
        if dtype == "BF16":  # round to nearest even on the top 16 bits of float32
            bits = a.view(np.uint32).astype(np.uint64)
            stored[name] = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16), "BF16")
        else:
            stored[name] = (a.astype(DTYPES[dtype]), None)
    make_numpy_files.write_safetensors(path, stored)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        data = raw[8 + length + begin:8 + length + end]
        if info["dtype"] == "BF16":
            a = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(data, DTYPES[info["dtype"]])
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


# The keys SAELens's pre-6 conversion gathers under "metadata" (its LLM_METADATA_KEYS, 6.18).
METADATA_KEYS = ["model_name", "hook_name", "model_class_name", "hook_head_index", "model_from_pretrained_kwargs",
                 "prepend_bos", "exclude_special_tokens", "neuronpedia_id", "context_size", "seqpos_slice",
                 "dataset_path", "sae_lens_version", "sae_lens_training_version"]


def version_of(cfg):
    """SAELens's reading of a config's version: the top-level key first, then metadata's."""
    version = cfg.get("sae_lens_version")
    if not version and isinstance(cfg.get("metadata"), dict):
        version = cfg["metadata"].get("sae_lens_version")
    return version


def upgrade(cfg):
    """A config in v6's names, by SAELens 6.18's rules (handle_config_defaulting): a config
    without a version, or older than 6.0.0, is converted from the flat pre-6 layout, and its
    metadata is rebuilt from the top-level keys alone (a nested "metadata" is not read)."""
    version = version_of(cfg)
    if version and int(str(version).split(".")[0]) >= 6:
        return cfg
    renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
               "activation_fn_str": "activation_fn"}
    cfg = {renames.get(k, k): v for k, v in cfg.items()}
    cfg.setdefault("apply_b_dec_to_input", True)
    cfg.setdefault("architecture", "standard")
    # Since 6.12.3: a topk activation with a k makes a TopK SAE, whatever architecture says
    # (SAELens 4.x wrote TopK SAEs as architecture "standard").
    kwargs = cfg.get("activation_fn_kwargs") or {}
    if cfg.get("activation_fn") == "topk" and kwargs.get("k") is not None:
        cfg["architecture"], cfg["k"] = "topk", kwargs["k"]
    if isinstance(cfg.get("normalize_activations"), bool):
        cfg["normalize_activations"] = "expected_average_only_in" if cfg["normalize_activations"] else "none"
    if cfg.get("normalize_activations") is None:
        cfg["normalize_activations"] = "none"
    cfg["metadata"] = {k: v for k, v in cfg.items() if k in METADATA_KEYS}
    return cfg


def read_folder(folder):
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = upgrade(json.load(f))
    weights = read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
    weights.pop("scaling_factor", None)  # v1/v2's ones
    return cfg, weights


def read_sparsity(folder):
    """sparsity.safetensors' log10 firing frequencies, or None when the folder has none."""
    path = os.path.join(folder, "sparsity.safetensors")
    return read_safetensors(path)["sparsity"] if os.path.exists(path) else None


def forward(cfg, w, x):
    """SAELens v6's encode and decode in float64: (codes, reconstruction)."""
    x = np.asarray(x, np.float64)
    mode = cfg.get("normalize_activations", "none")
    if mode == "constant_norm_rescale":
        scale = np.sqrt(x.shape[1]) / np.linalg.norm(x, axis=1, keepdims=True)
        x = x * scale
    elif mode == "layer_norm":
        # In: (x - mu) / (std + 1e-5), std with n - 1; out: y * std + mu, no epsilon (its ln_std).
        mu = x.mean(axis=1, keepdims=True)
        std = (x - mu).std(axis=1, ddof=1, keepdims=True)
        x = (x - mu) / (std + 1e-5)
    sae_in = x - w["b_dec"] if cfg.get("apply_b_dec_to_input", True) else x
    arch = cfg["architecture"]
    if arch == "gated":
        gate = sae_in @ w["W_enc"] + w["b_gate"]
        mag = sae_in @ (w["W_enc"] * np.exp(w["r_mag"])) + w["b_mag"]
        z = (gate > 0) * np.maximum(mag, 0)
    else:
        pre = sae_in @ w["W_enc"] + w["b_enc"]
        if arch == "standard":
            z = np.maximum(pre, 0)
        elif arch == "jumprelu":
            z = np.maximum(pre, 0) * (pre > w["threshold"])
        elif arch == "topk":
            if cfg.get("rescale_acts_by_decoder_norm", False):
                pre = pre * np.linalg.norm(w["W_dec"], axis=1)
            z = np.zeros_like(pre)
            top = np.argsort(-pre, axis=1, kind="stable")[:, :cfg["k"]]
            rows = np.arange(pre.shape[0])[:, None]
            z[rows, top] = np.maximum(pre[rows, top], 0)
        else:
            raise ValueError(arch)
    dec = w["W_dec"]
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        dec = dec / np.linalg.norm(dec, axis=1, keepdims=True)
    y = z @ dec + w["b_dec"]
    if mode == "constant_norm_rescale":
        y = y / scale
    elif mode == "layer_norm":
        y = y * std + mu
    return z, y


TENSOR_NAMES = {
    "standard": ["W_enc", "b_enc", "W_dec", "b_dec"],
    "topk": ["W_enc", "b_enc", "W_dec", "b_dec"],
    "jumprelu": ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"],
    "gated": ["W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec"],
}
V6_KEYS = ["d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations", "architecture",
           "metadata"]


def check_layout(folder):
    """What SAELens's loader insists on, for a folder someone else wrote: the v6 keys, the
    architecture's tensors and no others, their shapes, float32. Returns (cfg, weights)."""
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    for key in V6_KEYS:
        assert key in cfg, f"{folder}: cfg.json lacks {key}"
    assert "sae_lens_version" in cfg["metadata"], folder
    arch, d, m = cfg["architecture"], cfg["d_in"], cfg["d_sae"]
    assert arch in TENSOR_NAMES, arch
    if arch == "topk":
        assert isinstance(cfg["k"], int) and 1 <= cfg["k"] <= m
    with open(os.path.join(folder, "sae_weights.safetensors"), "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    assert sorted(header) == sorted(TENSOR_NAMES[arch]), (folder, sorted(header))
    shapes = {"W_enc": [d, m], "W_dec": [m, d], "b_dec": [d]}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        assert info["shape"] == shapes.get(name, [m]), (name, info["shape"])
    return read_folder(folder)
