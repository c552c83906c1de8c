#!/usr/bin/python3
"""mauve_ref.py -- independent NumPy reference for lib/train/metrics.c.

Writes tests/data/mauve_ref.txt:
  * a PCA fixture: data X [n, d], eigenvalues of the covariance (numpy.linalg.eigh,
    descending), the number of components kept at explained variance 0.9
    (the MAUVE reference's rule: argmax(cumsum(ratio) >= 0.9) + 1) and the
    projections of the centred rows (sign of each column arbitrary);
  * MAUVE cases from fixed cluster labels (so k-means initialisation is out of
    the comparison): histograms, divergence curve with mixture weights
    linspace(1e-6, 1-1e-6, 25), scaling c = 5, end points (1,0) and (0,1),
    score = 0.5 * (trapezoid of y over x sorted by x + of x over y sorted by y),
    the procedure of the mauve-text package's compute_mauve.
Run: /usr/bin/python3 tests/ref/mauve_ref.py > tests/data/mauve_ref.txt
"""
import numpy as np


def kl(a, b):
    if np.any((a > 0) & (b == 0)):
        return np.inf
    m = a > 0
    return float(np.sum(a[m] * np.log(a[m] / b[m])))


def mauve_from_labels(pl, ql, k, c=5.0, size=25):
    p = np.bincount(pl, minlength=k) / len(pl)
    q = np.bincount(ql, minlength=k) / len(ql)
    pts = [(0.0, np.inf)]
    for w in np.linspace(1e-6, 1 - 1e-6, size):
        r = w * p + (1 - w) * q
        pts.append((kl(q, r), kl(p, r)))
    pts.append((np.inf, 0.0))
    curve = np.exp(-c * np.array(pts))
    x, y = curve[:, 0], curve[:, 1]
    i1 = np.argsort(x, kind="stable")
    i2 = np.argsort(y, kind="stable")
    area = 0.5 * (np.trapz(y[i1], x[i1]) + np.trapz(x[i2], y[i2]))
    return area, curve


def main():
    rng = np.random.default_rng(7)
    # PCA fixture: anisotropic Gaussian, d = 6
    n, d = 40, 6
    a = rng.normal(size=(d, d)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    X = (rng.normal(size=(n, d)) @ a.T + rng.normal(size=d)).astype(np.float32)
    Xd = X.astype(np.float64)
    Xc = Xd - Xd.mean(0)
    C = Xc.T @ Xc / (n - 1)
    w, V = np.linalg.eigh(C)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    ratio = np.cumsum(w / w.sum())
    k = int(np.argmax(ratio >= 0.9)) + 1
    P = Xc @ V[:, :k]
    print("pca", n, d, k)
    for row in X:
        print(" ".join("%.9g" % v for v in row))
    print(" ".join("%.17g" % v for v in w))
    for row in P:
        print(" ".join("%.17g" % v for v in row))
    # MAUVE from labels: an intermediate case, the disjoint case, identical
    cases = []
    k = 6
    pl = rng.choice(k, size=57, p=[0.3, 0.25, 0.2, 0.15, 0.1, 0.0])
    ql = rng.choice(k, size=43, p=[0.1, 0.1, 0.2, 0.2, 0.2, 0.2])
    cases.append((pl, ql, k))
    cases.append((np.array([0, 1, 2, 0, 1, 2, 0, 1]), np.array([3, 4, 5, 3, 4]), 6))
    same = rng.choice(4, size=30)
    cases.append((same, same.copy(), 4))
    for pl, ql, k in cases:
        area, curve = mauve_from_labels(pl, ql, k)
        print("mauve", len(pl), len(ql), k, "%.17g" % area)
        print(" ".join(str(int(v)) for v in pl))
        print(" ".join(str(int(v)) for v in ql))
        print(" ".join("%.17g" % v for v in curve.reshape(-1)))


main()
