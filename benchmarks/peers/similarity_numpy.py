"""mint's similarity measures against the NumPy / SciPy / scikit-learn code research uses for
them, on the same inputs (n = 10,000 examples, d = 768 features, float32 activations written by
bench_similarity; RSA's Kendall tau on the first 3,000 examples), timed in the same run.

Each row first checks that both sides give the same value (every mint value within the printed
tolerance of NumPy's float64 value), then prints NumPy's time over mint's as a speedup, twice: with
both sides on float64 data and with both on float32 data (NumPy then multiplies in float32
throughout; mint multiplies float32 within blocks of rows and sums in double). The last column says
how far each side's float32 result lands from the float64 one. Run with
scripts/bench peers similarity_numpy [--only REGEX] [--quick].
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.stats
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

N, D, KENDALL_N = 10000, 768, 3000


def centre(a):
    return a - a.mean(axis=0, keepdims=True)


# --- Kornblith et al. (2019), their CKA notebook: Gram matrices, centred, compared ---
def gram_linear(x):
    return x @ x.T


def gram_rbf(x, threshold=1.0):
    dots = x @ x.T
    sq_norms = np.diag(dots)
    sq_distances = -2 * dots + sq_norms[:, None] + sq_norms[None, :]
    return np.exp(-sq_distances / (2 * threshold ** 2 * np.median(sq_distances)))


def center_gram(gram, unbiased=False):
    gram = gram.copy()
    if unbiased:
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0, dtype=np.float64) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = np.mean(gram, 0, dtype=np.float64)
        means -= np.mean(means) / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def cka_from_grams(gx, gy, debiased=False):
    gx, gy = center_gram(gx, debiased), center_gram(gy, debiased)
    return gx.ravel().dot(gy.ravel()) / (np.linalg.norm(gx) * np.linalg.norm(gy))


def linear_cka_gram(x, y):
    return cka_from_grams(gram_linear(x), gram_linear(y))


def linear_cka_features(x, y):
    x, y = centre(x), centre(y)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def debiased_cka_features(x, y):
    # Kornblith et al.'s feature_space_linear_cka(debiased=True): the unbiased HSIC in feature space.
    x, y = centre(x), centre(y)
    n = x.shape[0]
    rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    norm_x, norm_y = rows_x.sum(), rows_y.sum()

    def debias(xty, rx, ry, nx, ny):
        return xty - n / (n - 2.0) * rx.dot(ry) + nx * ny / ((n - 1) * (n - 2))

    cross = debias(np.linalg.norm(x.T @ y) ** 2, rows_x, rows_y, norm_x, norm_y)
    self_x = debias(np.linalg.norm(x.T @ x) ** 2, rows_x, rows_x, norm_x, norm_x)
    self_y = debias(np.linalg.norm(y.T @ y) ** 2, rows_y, rows_y, norm_y, norm_y)
    return cross / np.sqrt(self_x * self_y)


def rbf_cka(x, y):
    return cka_from_grams(gram_rbf(x), gram_rbf(y))


# --- Nguyen et al. (2021): unbiased HSIC per minibatch, averaged ---
def hsic_unbiased(k, l):
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    ones = np.ones(n, dtype=k.dtype)
    return ((k * l).sum() + ones @ k @ ones * (ones @ l @ ones) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (ones @ k) @ (l @ ones)) / (n * (n - 3))


def minibatch_cka(x, y, batch=1000):
    kl = kk = ll = 0.0
    for b in range(0, x.shape[0], batch):
        k, l = gram_linear(x[b:b + batch]), gram_linear(y[b:b + batch])
        kl += hsic_unbiased(k, l)
        kk += hsic_unbiased(k, k)
        ll += hsic_unbiased(l, l)
    return kl / np.sqrt(kk * ll)


# --- CCA family: covariances, inverse square roots by eigh, SVD (as Raghu et al.'s cca_core) ---
def inverse_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v / np.sqrt(np.maximum(w, 1e-300))) @ v.T


def cca(x, y, epsilon=1e-6, vectors=False):
    x, y = centre(x), centre(y)
    sxx, syy, sxy = x.T @ x, y.T @ y, x.T @ y
    sxx = sxx + epsilon * np.trace(sxx) / sxx.shape[0] * np.eye(sxx.shape[0], dtype=sxx.dtype)
    syy = syy + epsilon * np.trace(syy) / syy.shape[0] * np.eye(syy.shape[0], dtype=syy.dtype)
    wx, wy = inverse_sqrt(sxx), inverse_sqrt(syy)
    m = wx @ sxy @ wy
    if not vectors:
        return np.linalg.svd(m, compute_uv=False)
    u, rho, _ = np.linalg.svd(m, full_matrices=False)
    return rho, x, wx @ u


def mean_cca(x, y):
    return cca(x, y).mean()


def svcca(x, y, keep=0.99):
    def reduce(a):
        u, s, _ = np.linalg.svd(centre(a), full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s ** 2), keep * np.sum(s ** 2))) + 1
        return u[:, :k] * s[:k]

    return cca(reduce(x), reduce(y), epsilon=0.0).mean()


def pwcca(x, y):
    # Morcos et al. (2018): canonical variates of X, orthonormalized (QR), weighted by
    # how much of X's neurons they account for.
    rho, xc, directions = cca(x, y, vectors=True)
    variates, _ = np.linalg.qr(xc @ directions)
    weights = np.abs(variates.T @ xc).sum(axis=1)
    return (weights / weights.sum()) @ rho


def procrustes(x, y):
    x, y = centre(x), centre(y)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return np.sqrt(max(0.0, 2 - 2 * np.linalg.svd(x.T @ y, compute_uv=False).sum()))


def shape_metric(x, y, alpha=0.5):
    # netrep's LinearMetric(alpha, score_method="angular"): partial whitening, optimal rotation, angle.
    def whiten(a):
        lam, v = np.linalg.eigh(a.T @ a)
        lam = np.maximum(lam, 1e-7)
        d = alpha + (1 - alpha) * lam ** -0.5
        return a @ ((v * d[None, :]) @ v.T)

    xw, yw = whiten(centre(x)), whiten(centre(y))
    u, _, vt = np.linalg.svd(xw.T @ yw)
    xa, ya = xw @ u, yw @ vt.T
    return np.arccos(np.clip(xa.ravel() @ ya.ravel() / (np.linalg.norm(xa) * np.linalg.norm(ya)), -1, 1))


def regression_r2(x, y):
    fit = LinearRegression().fit(x, y)
    return r2_score(y, fit.predict(x), multioutput="variance_weighted")


def upper_triangle(rdm):
    return rdm[np.triu_indices(rdm.shape[0], 1)]


def rsa(x, y, comparison):
    a, b = upper_triangle(1 - np.corrcoef(x)), upper_triangle(1 - np.corrcoef(y))
    if comparison == "spearman":
        return scipy.stats.spearmanr(a, b).correlation
    if comparison == "kendall":
        return scipy.stats.kendalltau(a, b).correlation
    return np.corrcoef(a, b)[0, 1]


def mutual_knn(x, y, k=10):
    # Huh et al. (2024): cosine neighbours of normalized features, shared fraction.
    def neighbours(a):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        sims = a @ a.T
        np.fill_diagonal(sims, -np.inf)
        idx = np.argpartition(-sims, k, axis=1)[:, :k]
        mask = np.zeros_like(sims, dtype=bool)
        np.put_along_axis(mask, idx, True, axis=1)
        return mask

    return (neighbours(x) & neighbours(y)).sum() / (x.shape[0] * k)


# (label, mint benchmark, NumPy peer, tolerance on |mint - NumPy float64|, subset of examples)
ROWS = [
    ("linear CKA vs NumPy's Gram-matrix formula", "linear_cka", linear_cka_gram, 1e-5, N),
    ("linear CKA vs NumPy's feature-space formula", "linear_cka", linear_cka_features, 1e-5, N),
    ("debiased linear CKA (feature space)", "debiased_cka", debiased_cka_features, 1e-5, N),
    ("RBF CKA (bandwidth 1 x median)", "rbf_cka", rbf_cka, 1e-5, N),
    ("minibatch CKA (10 batches of 1000)", "minibatch_cka", minibatch_cka, 1e-5, N),
    ("mean CCA (ridge 1e-6)", "mean_cca", mean_cca, 1e-4, N),
    ("SVCCA (99% variance)", "svcca", svcca, 1e-4, N),
    ("PWCCA", "pwcca", pwcca, 1e-4, N),
    ("Procrustes distance", "procrustes", procrustes, 1e-5, N),
    ("shape metric, alpha 0.5 (netrep)", "shape_metric", shape_metric, 1e-4, N),
    ("linear regression R^2 (scikit-learn)", "regression", regression_r2, 1e-5, N),
    ("RSA, correlation RDM, Spearman (SciPy)", "rsa_spearman", lambda x, y: rsa(x, y, "spearman"), 1e-5, N),
    ("RSA, correlation RDM, Pearson", "rsa_pearson", lambda x, y: rsa(x, y, "pearson"), 1e-5, N),
    ("RSA, correlation RDM, Kendall tau-b (SciPy)", "rsa_kendall", lambda x, y: rsa(x, y, "kendall"), 1e-5, KENDALL_N),
    ("mutual kNN, k = 10 (cosine)", "mutual_knn", mutual_knn, 1e-3, N),
]


def time_peer(fn):
    """(value, seconds): the median of 3 runs for slow peers, common.best_seconds for fast ones."""
    start = time.perf_counter()
    value = fn()
    once = time.perf_counter() - start
    if once < 1.0:
        return value, common.best_seconds(fn)
    samples = [once]
    for _ in range(2):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return value, statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build", help="the Meson build folder holding bench_similarity")
    parser.add_argument("--only", default="", help="a regular expression: run only the rows whose label matches")
    parser.add_argument("--quick", action="store_true", help="float32 only (skip the float64 runs)")
    args = parser.parse_args()

    threads = common.thread_count()
    print(f"threads: {threads}; {common.setup_peers(threads)}")
    binary = os.path.join(args.build, "benchmarks", "bench_similarity")
    folder = tempfile.mkdtemp(prefix="mint_similarity_")
    subprocess.run([binary, f"--write_inputs={folder}"], check=True, capture_output=True)
    x32 = np.fromfile(os.path.join(folder, "x.f32"), dtype=np.float32).reshape(N, D)
    y32 = np.fromfile(os.path.join(folder, "y.f32"), dtype=np.float32).reshape(N, D)
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)

    rows = [r for r in ROWS if re.search(args.only, r[0])]
    dtypes = ["f32"] if args.quick else ["f64", "f32"]
    names = sorted({f"{r[1]}_{t}/real_time" for r in rows for t in dtypes})
    mint_times, mint_counters = common.run_mint(binary, "^(" + "|".join(re.escape(n.split("/")[0]) for n in names) + ")/",
                                                counters=True)

    header = (["measure", "tolerance"] + [c for t in dtypes for c in (f"NumPy {t}", f"mint {t}", f"speedup {t}")]
              + ["|error| f32: mint / NumPy", "agree"])
    table, failed = [], False
    for label, bench, peer, tolerance, n in rows:
        row, agree, values = [label, f"{tolerance:g}"], True, {}
        for t in dtypes:
            x, y = (x64, y64) if t == "f64" else (x32, y32)
            values[f"numpy {t}"], seconds = time_peer(lambda: peer(x[:n], y[:n]))
            name = f"{bench}_{t}/real_time"
            values[f"mint {t}"] = mint_counters[name]["value"]
            row += [f"{seconds * 1e3:.0f} ms", f"{mint_times[name] * 1e3:.0f} ms", common.speedup(seconds, mint_times[name])]
        # Every mint value against NumPy's float64 one (NumPy's float32 one with --quick).
        reference = values.get("numpy f64", values["numpy f32"])
        agree = all(abs(values[f"mint {t}"] - reference) <= tolerance for t in dtypes)
        # How far each side's float32 run lands from the float64 answer: the precision actually delivered.
        errors = "-" if "numpy f64" not in values else (
            f"{abs(values['mint f32'] - reference):.0e} / {abs(values['numpy f32'] - reference):.0e}")
        row += [errors, "yes" if agree else "NO"]
        failed = failed or not agree
        table.append(row)
        print(f"  {label}: " + ", ".join(f"{k} {v:.10f}" for k, v in values.items()), flush=True)
    print()
    common.print_table(header, table)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
