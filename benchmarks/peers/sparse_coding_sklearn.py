"""Classical sparse coding against scikit-learn, on the same float32 data in the
same run: OMP from the Gram matrix (sklearn.linear_model.orthogonal_mp_gram),
lasso codes by coordinate descent (sklearn.decomposition.sparse_encode with
algorithm="lasso_cd") and by LARS (algorithm="lasso_lars", sparse_encode's
default), and one epoch of online dictionary learning from a given
start, in order (MiniBatchDictionaryLearning, fit_algorithm="cd", shuffle=False).

The data: a planted dictionary of K = 256 random unit atoms in d = 64 dimensions,
n = 2048 signals of 8 atoms each (normal coefficients) plus noise of standard
deviation 0.01; alpha = 0.1, batches of 256, the learner started from the first
256 signals normalized. NumPy writes it to a temporary folder; bench_sparse_coding
reads it, writes its results there, then is timed.

Same result first:
- OMP: the same support in at least 99% of the rows, and on those rows the values
  within 1e-3 of the largest code (float32 on both sides; near-ties in the greedy
  pick may go either way).
- lasso: the objectives sum_i 0.5 ||x_i - c_i D||^2 + alpha ||c_i||_1 agree within
  2e-4 sum_i ||x_i||^2 (both stop at a duality gap of 1e-4 ||x_i||^2 per signal).
- LARS: both exact, so the codes themselves, within 1e-4 of the largest code
  (float32 data on both sides; 4e-6 in the run docs/sparse_coding.md shows).
- online dictionary learning: every atom's cosine with its counterpart at least
  0.999 (the same steps; float32 rounding differs).
scikit-learn gets the same number of threads: BLAS threads, and n_jobs for the
functions that take it (sparse_encode's lasso and LARS, and the learner's coding);
orthogonal_mp_gram has no n_jobs and runs its loop over signals on one core.
Run: scripts/bench peers sparse_coding_sklearn"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

N, D, K, NONZEROS, ALPHA, BATCH = 2048, 64, 256, 8, 0.1, 256


def make_data(folder):
    rng = np.random.default_rng(0)
    dictionary = rng.standard_normal((K, D))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((N, K))
    for i in range(N):
        codes[i, rng.choice(K, NONZEROS, replace=False)] = rng.standard_normal(NONZEROS)
    x = (codes @ dictionary + 0.01 * rng.standard_normal((N, D))).astype(np.float32)
    dictionary = dictionary.astype(np.float32)
    dict_init = x[:K] / np.linalg.norm(x[:K], axis=1, keepdims=True)
    np.save(os.path.join(folder, "x.npy"), x)
    np.save(os.path.join(folder, "dictionary.npy"), dictionary)
    np.save(os.path.join(folder, "dict_init.npy"), dict_init)
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump({"nonzeros": NONZEROS, "alpha": ALPHA, "batch_size": BATCH}, f)
    return x, dictionary, dict_init


def objective(x, dictionary, codes):
    x, dictionary, codes = (a.astype(np.float64) for a in (x, dictionary, codes))
    return 0.5 * ((x - codes @ dictionary) ** 2).sum() + ALPHA * np.abs(codes).sum()


def check_omp(mine, theirs):
    same = np.all((mine != 0) == (theirs != 0), axis=1)
    if same.mean() < 0.99:
        sys.exit(f"sparse_coding_sklearn: omp: the same support in only {same.mean():.1%} of the rows")
    diff = np.abs(mine[same] - theirs[same]).max()
    if diff > 1e-3 * np.abs(theirs).max():
        sys.exit(f"sparse_coding_sklearn: omp: codes differ by {diff}")
    return f"support {same.mean():.1%} equal, max diff {diff:.1e}"


def check_lasso(x, dictionary, mine, theirs):
    a, b = objective(x, dictionary, mine), objective(x, dictionary, theirs)
    bound = 2e-4 * float((x.astype(np.float64) ** 2).sum())
    if abs(a - b) > bound:
        sys.exit(f"sparse_coding_sklearn: lasso: objectives {a} (mint) and {b} (scikit-learn) differ by more than {bound}")
    return f"objective {a:.6g} vs {b:.6g}"


def check_lars(mine, theirs):
    diff = np.abs(mine - theirs).max()
    if diff > 1e-4 * np.abs(theirs).max():
        sys.exit(f"sparse_coding_sklearn: lars: codes differ by {diff}")
    return f"max diff {diff:.1e}"


def check_dictionary(mine, theirs):
    cosines = (mine * theirs).sum(axis=1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))
    if cosines.min() < 0.999:
        sys.exit(f"sparse_coding_sklearn: online dictionary: an atom's cosine with its counterpart is {cosines.min()}")
    return f"min atom cosine {cosines.min():.6f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-bench")
    args = parser.parse_args()
    threads = common.thread_count()
    print(common.setup_peers(threads))
    from sklearn import __version__ as sklearn_version
    from sklearn.decomposition import MiniBatchDictionaryLearning, sparse_encode
    from sklearn.linear_model import orthogonal_mp_gram

    print(f"scikit-learn {sklearn_version}; n {N}, d {D}, K {K}, nonzeros {NONZEROS}, alpha {ALPHA}, batch {BATCH}")
    folder = tempfile.mkdtemp(prefix="mint-sparse-peers-")
    try:
        x, dictionary, dict_init = make_data(folder)
        env = dict(os.environ, MINT_SPARSE_BENCH_DIR=folder)
        binary = os.path.join(args.build, "benchmarks", "bench_sparse_coding")
        if not os.path.exists(binary):
            sys.exit(f"{binary} not found: build the benchmarks first")
        out = subprocess.run([binary, "--benchmark_filter=^(omp_gram|lasso|lars|online_dictionary)/",
                              "--benchmark_format=json", "--benchmark_repetitions=3",
                              "--benchmark_report_aggregates_only=true"],
                             check=True, capture_output=True, text=True, env=env).stdout
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
        mint = {b["run_name"].split("/")[0]: b["real_time"] * scale[b["time_unit"]]
                for b in json.loads(out)["benchmarks"] if b.get("aggregate_name") == "median"}
        load = lambda name: np.load(os.path.join(folder, f"mint_{name}.npy"))

        gram = dictionary @ dictionary.T
        xy = dictionary @ x.T

        def sk_omp():
            return orthogonal_mp_gram(gram, xy, n_nonzero_coefs=NONZEROS).T

        def sk_lasso():
            return sparse_encode(x, dictionary, algorithm="lasso_cd", alpha=ALPHA, n_jobs=threads)

        def sk_lars():
            return sparse_encode(x, dictionary, algorithm="lasso_lars", alpha=ALPHA, n_jobs=threads)

        def sk_online():
            learner = MiniBatchDictionaryLearning(
                n_components=K, alpha=ALPHA, batch_size=BATCH, max_iter=1, fit_algorithm="cd", shuffle=False,
                dict_init=dict_init.copy(), tol=0, max_no_improvement=None, n_jobs=threads)
            return learner.fit(x).components_

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning from single lasso solves
            checks = {
                "omp_gram": ("orthogonal_mp_gram", sk_omp, check_omp(load("omp"), sk_omp())),
                "lasso": ("sparse_encode lasso_cd", sk_lasso, check_lasso(x, dictionary, load("lasso"), sk_lasso())),
                "lars": ("sparse_encode lasso_lars", sk_lars, check_lars(load("lars"), sk_lars())),
                "online_dictionary": ("MiniBatchDictionaryLearning", sk_online,
                                      check_dictionary(load("online_dictionary"), sk_online())),
            }
            rows = []
            for name, (peer_name, fn, agreement) in checks.items():
                peer_seconds = common.best_seconds(fn, repeat=3, min_seconds=0.2)
                rows.append([name, f"{mint[name] * 1e3:.1f} ms", peer_name, f"{peer_seconds * 1e3:.1f} ms",
                             common.speedup(peer_seconds, mint[name]), agreement])
        common.print_table(["work", "mint", "scikit-learn", "time", "speedup", "same result"], rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
