"""Write a synthetic PLINK 1 fileset <prefix>.bed/.bim/.fam of 2,000 samples whose SNPs have chosen
genotype-count triples (hom A1, het, hom A2; the rest missing) for plink2 --hardy (make_reference.sh).
Standard library only; deterministic (random.Random(2005))."""

import random
import sys

N = 2000
prefix = sys.argv[1]
rng = random.Random(2005)
triples = [
    (0, 0, 0),  # no call
    (0, 0, N),
    (N, 0, 0),
    (0, N, 0),
    (0, N - 1, 1),
    (1, N - 1, 0),  # monomorphic / all het
    (N // 2, 0, N // 2),
    (N // 2 - 1, 2, N // 2 - 1),
    (1, 0, N - 1),
    (0, 1, N - 1),
    (1, 1, N - 2),
    (2, 0, N - 2),
    (0, 2, N - 2),
    (3, 0, 1997),
    (1, 2, 1997),
    (0, 3, 1997),
    (500, 1000, 500),
    (400, 1200, 400),
    (600, 800, 600),
    (100, 1800, 100),
    (900, 200, 900),
    (10, 0, 10),
    (1, 1, 1),
    (0, 1, 0),
    (1, 0, 0),
    (0, 2, 0),
    (2, 0, 2),
    (5, 30, 5),
]
while len(triples) < 400:
    n = rng.choice([rng.randint(1, 50), rng.randint(50, 500), rng.randint(500, N)])
    q = rng.random() ** rng.choice([1, 2, 4])  # frequency of the rarer allele, skewed to 0
    q = min(q, 1 - q)
    f = rng.uniform(-1, 1) ** 3  # inbreeding-like deviation from HWE (+: het deficit)
    p_het = max(0.0, min(1.0, 2 * q * (1 - q) * (1 - f)))
    het = sum(rng.random() < p_het for _ in range(n))
    rest = n - het
    p_hom1 = q * q / max(q * q + (1 - q) * (1 - q), 1e-12)
    hom1 = sum(rng.random() < p_hom1 for _ in range(rest))
    triples.append((hom1, het, rest - hom1))
nbytes = (N + 3) // 4
with open(prefix + ".bed", "wb") as bed, open(prefix + ".bim", "w") as bim:
    bed.write(b"\x6c\x1b\x01")
    for j, (h1, het, h2) in enumerate(triples):
        # PLINK codes: 0b00 hom A1, 0b10 het, 0b11 hom A2, 0b01 missing; sample k in bits 2k..2k+1
        codes = [0b00] * h1 + [0b10] * het + [0b11] * h2 + [0b01] * (N - h1 - het - h2)
        rng.shuffle(codes)
        codes += [0] * (4 * nbytes - N)
        bed.write(bytes(sum(codes[4 * i + k] << (2 * k) for k in range(4)) for i in range(nbytes)))
        bim.write(f"1\tx{j + 1}\t0\t{j + 1}\tA\tB\n")
with open(prefix + ".fam", "w") as fam:
    for i in range(N):
        fam.write(f"s{i + 1}\ts{i + 1}\t0\t0\t0\t-9\n")
