"""Writes the files io_tests reads, with Debian's NumPy: .npy files of every
dtype, byte order and layout, .npz archives (stored and deflated) and
safetensors files written by hand from the format's description (the
safetensors package is not in Debian). Run by meson before io_tests:
    make_numpy_files.py OUTPUT_FOLDER STAMP_FILE
Values follow one rule so the C++ side can check them: element k (in row-major
order) of a float array is k * 0.5 - 3, of an integer array k % 100 (minus 50
for signed types), of a bool array k % 3 == 0."""

import json
import os
import struct
import sys

import numpy as np


def values(shape, dtype):
    k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (k * 0.5 - 3).astype(dtype)
    if dtype.kind == "b":
        return k % 3 == 0
    if dtype.kind == "i":
        return (k % 100 - 50).astype(dtype)
    return (k % 100).astype(dtype)


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    names = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
             "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
    for name, (array, dtype_name) in tensors.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype_name or names[array.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    out, stamp = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    dtypes = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"]
    for dtype in dtypes:
        for order in "<>":
            a = values((3, 4), dtype)
            a = a.astype(a.dtype.newbyteorder(order)) if a.dtype.itemsize > 1 else a
            np.save(os.path.join(out, f"{dtype}_{'le' if order == '<' else 'be'}.npy"), a)
    np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(values((3, 4, 2), "float32")))
    np.save(os.path.join(out, "scalar.npy"), np.float64(2.5))
    np.save(os.path.join(out, "empty.npy"), np.zeros((0, 5), np.float32))
    np.save(os.path.join(out, "rank4.npy"), values((2, 3, 4, 5), "float32"))
    # Format 2.0 (a header over 64 KiB) and 3.0 (a UTF-8 header), written with NumPy's own writer.
    with open(os.path.join(out, "version2.npy"), "wb") as f:
        np.lib.format.write_array(f, values((3, 4), "float32"), version=(2, 0))
    with open(os.path.join(out, "version3.npy"), "wb") as f:
        np.lib.format.write_array(f, values((3, 4), "float32"), version=(3, 0))
    # bfloat16 as ml_dtypes saves it: 2-byte void ('<V2') holding the top half of each float32.
    b = (values((3, 4), "float32").view(np.uint32) >> 16).astype("<u2").view("V2")
    np.save(os.path.join(out, "bfloat16.npy"), b)
    arrays = {"a": values((3, 4), "float32"), "b": values((5,), "int64"), "c": values((2, 3), "float16")}
    np.savez(os.path.join(out, "stored.npz"), **arrays)
    np.savez_compressed(os.path.join(out, "deflated.npz"), **arrays)
    bf16 = (values((3, 4), "float32").view(np.uint32) >> 16).astype("<u2")
    write_safetensors(os.path.join(out, "weights.safetensors"), {
        "W_enc": (values((4, 6), "float32"), None),
        "b_enc": (values((6,), "float16"), None),
        "W_dec": (bf16, "BF16"),
        "steps": (values((2,), "int64"), None),
        "mask": (values((5,), "bool"), None),
    }, metadata={"format": "pt", "model": "toy"})
    with open(stamp, "w") as f:
        f.write("ok\n")


if __name__ == "__main__":
    main()
