"""Checks that NumPy reads what mint writes: runs io_write_samples (which
writes .npy/.npz files of every dtype and layout into a folder), then loads
each with np.load and compares with the values the C++ side wrote (element k
in row-major order = k * 0.5 - 3 for floats, k % 100 for integers (minus 50
for signed ones), k % 3 == 0 for bool: make_numpy_files.py's rule).
Usage: check_mint_files.py WRITER FOLDER"""

import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_numpy_files import values as expected  # noqa: E402  (the one value rule of both sides)


def main():
    writer, folder = sys.argv[1], sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    subprocess.run([writer, folder], check=True)
    checked = 0
    for dtype in ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64"]:
        a = np.load(os.path.join(folder, f"{dtype}.npy"))
        assert a.dtype == np.dtype(dtype), (dtype, a.dtype)
        assert np.array_equal(a, expected((3, 4), dtype)), dtype
        checked += 1
    f = np.load(os.path.join(folder, "fortran.npy"))
    assert f.flags.f_contiguous and np.array_equal(f, expected((4, 3), "float32")), "fortran"
    s = np.load(os.path.join(folder, "strided.npy"))
    assert np.array_equal(s, expected((4, 6), "float32")[:, ::2]), "strided"
    z = np.load(os.path.join(folder, "arrays.npz"))
    assert sorted(z.files) == ["a", "b", "t"], z.files
    assert np.array_equal(z["a"], expected((3, 4), "float32"))
    assert np.array_equal(z["b"], expected((5,), "int64"))
    assert np.array_equal(z["t"], expected((3, 4), "float32").T)
    checked += 6
    print(f"check_mint_files: NumPy read {checked} files mint wrote, all equal")
    print(f"{checked} passed, 0 failed")


main()
