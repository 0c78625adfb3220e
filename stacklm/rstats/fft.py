"""R's ``fft`` (Singleton's mixed-radix algorithm), used by :func:`stacklm.rstats.density.density`.

Ported rather than ``numpy.fft``: pocketfft rounds differently from R's Singleton FFT (87% of the
outputs of a 1024-point transform differ, by up to 8e-16 of the largest), and density() feeds
qvalue's lfdr, which is compared with R to 1e-11."""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------------------------
# density() with R's FFT
# --------------------------------------------------------------------------------------------


def _digit_reversal4(n: int) -> np.ndarray:
    """Base-4 digit reversal of 0..n-1 (the output order of Singleton's radix-4 passes)."""
    k = round(math.log(n, 4))
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for _ in range(k):
        rev = rev * 4 + idx % 4
        idx //= 4
    return rev


def fft(re: np.ndarray, im: np.ndarray, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """R's ``fft(z, inverse)`` (Singleton's mixed-radix FFT, src/appl/fft.c) for n = 4^k.

    For n = 4^k R factors n into radix-4 passes only; this is the radix-4 branch of ``fftmx``
    operation by operation (twiddle factors by the same recurrence, recomputed with sin/cos
    every 32 steps), with R's interleaved storage (index increment 2), followed by the final
    permutation (base-4 digit reversal).  Unnormalised in both directions, as R.  The
    ``density()`` FFT always has n = 1024; the work is fixed (5 passes of 256 butterflies).
    """
    n = re.size
    if n < 4 or 4 ** round(math.log(n, 4)) != n:
        raise ValueError("fft: n must be a power of 4")
    a = [0.0] * (2 * n + 2)
    b = [0.0] * (2 * n + 2)
    a[1 : 2 * n : 2] = re.tolist()
    b[1 : 2 * n : 2] = im.tolist()
    isn = 2 if inverse else -2
    inc = 2
    nt = inc * n
    ks = inc * n
    rad = math.pi / 4 if isn > 0 else -math.pi / 4
    kspan = ks
    jc = ks // n
    klim = 32 * jc
    c1 = s1 = c2 = s2 = c3 = s3 = 0.0
    while True:  # L_start: one radix-4 pass
        dr = (8.0 * jc) / kspan
        cd = math.sin(0.5 * dr * rad)
        cd = 2.0 * cd * cd
        sd = math.sin(dr * rad)
        kk = 1
        kspan //= 4
        state = 120
        mm = 0
        while True:
            if state == 120:
                c1, s1 = 1.0, 0.0
                mm = min(kspan, klim)
            elif state == 130:
                c2 = c1 - (cd * c1 + sd * s1)
                s1 = (sd * c1 - cd * s1) + s1
                c1 = c2
            if state in (130, 140):
                c2 = c1 * c1 - s1 * s1
                s2 = c1 * s1 * 2.0
                c3 = c2 * c1 - s2 * s1
                s3 = c2 * s1 + s2 * c1
            while True:  # L150: the butterflies sharing these twiddle factors
                k1 = kk + kspan
                k2 = k1 + kspan
                k3 = k2 + kspan
                akp = a[kk] + a[k2]
                akm = a[kk] - a[k2]
                ajp = a[k1] + a[k3]
                ajm = a[k1] - a[k3]
                a[kk] = akp + ajp
                ajp = akp - ajp
                bkp = b[kk] + b[k2]
                bkm = b[kk] - b[k2]
                bjp = b[k1] + b[k3]
                bjm = b[k1] - b[k3]
                b[kk] = bkp + bjp
                bjp = bkp - bjp
                if isn < 0:
                    akp = akm + bjm
                    akm = akm - bjm
                    bkp = bkm - ajm
                    bkm = bkm + ajm
                else:
                    akp = akm - bjm
                    akm = akm + bjm
                    bkp = bkm + ajm
                    bkm = bkm - ajm
                if s1 == 0.0:
                    a[k1], b[k1] = akp, bkp
                    a[k2], b[k2] = ajp, bjp
                    a[k3], b[k3] = akm, bkm
                else:
                    a[k1] = akp * c1 - bkp * s1
                    b[k1] = akp * s1 + bkp * c1
                    a[k2] = ajp * c2 - bjp * s2
                    b[k2] = ajp * s2 + bjp * c2
                    a[k3] = akm * c3 - bkm * s3
                    b[k3] = akm * s3 + bkm * c3
                kk = k3 + kspan
                if kk > nt:
                    break
            kk = kk - nt + jc  # L170
            if kk <= mm:
                state = 130
            elif kk < kspan:
                s1 = ((kk - 1) // jc) * dr * rad
                c1 = math.cos(s1)
                s1 = math.sin(s1)
                mm = min(kspan, mm + klim)
                state = 140
            else:
                kk = kk - kspan + inc
                if kk <= jc:
                    state = 120
                else:
                    break
        if kspan == jc:
            break
    order = _digit_reversal4(n)
    return np.array(a[1 : 2 * n : 2])[order], np.array(b[1 : 2 * n : 2])[order]
