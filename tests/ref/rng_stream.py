#!/usr/bin/env python3
"""Reference stream for smdiff's Philox4x64-10 generator, produced by NumPy's
independent implementation (numpy.random.Philox).

smdiff keys its generator with (seed, stream) = key words (k0, k1), which is
Philox(key=seed + (stream << 64)) in NumPy. Output: tests/data/rng_philox.txt
with lines "seed stream index u64 uniform" where uniform is
Generator(Philox(...)).random() -- the same 53-bit mapping smdiff uses.
Run: /usr/bin/python3 tests/ref/rng_stream.py > tests/data/rng_philox.txt
"""
import numpy as np

CASES = [(0, 0), (42, 0), (42, 7), (2**63 + 12345, 2**40 + 3), (2**64 - 1, 2**64 - 1)]
N = 11  # not a multiple of 4, so buffer refills are exercised

print("# seed stream index u64 uniform  (numpy %s Philox4x64-10)" % np.__version__)
for seed, stream in CASES:
    raw = np.random.Philox(key=seed + (stream << 64)).random_raw(N)
    uni = np.random.Generator(np.random.Philox(key=seed + (stream << 64))).random(N)
    for i in range(N):
        print(f"{seed} {stream} {i} {int(raw[i])} {uni[i]!r}")
