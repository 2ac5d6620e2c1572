"""The least-squares fits of the pixel lane detector, in plain floats: the running parabola that
predicts a marking's next pixel while tracing (`LocalParabola`), and the quadratic y(x) fitted
to a traced marking, grown outward from the ego while it fits (`grow`). numpy's solvers cost
more than the arithmetic of these 3 x 3 systems."""

from __future__ import annotations

import numpy as np

from .lane_types import PixelLaneOptions, poly


class LocalParabola:
    """Least-squares parabola through the last ~`n` traced points (exponentially weighted sums,
    O(1) a point; solved every 4th point): slope and half the second derivative at the newest
    point, px/px and px/px^2. Rows are whole pixels and stripes are drawn a row apart: three
    points would make a curvature of noise, and a trace that extrapolates a false curve across a
    gap jumps to the next marking."""

    def __init__(self, u0: float, slope: float, max_k: float, n: int = 24) -> None:
        self.u0, self.slope, self.k, self.max_k = u0, slope, 0.0, max_k
        self.decay = 1.0 - 1.0 / n
        self.s = [0.0] * 8  # weighted sums of t^0..t^4 and v t^0..t^2, t = (u - u0) / 32
        self.count, self.t_first = 0, None

    def add(self, u: float, v: float) -> tuple[float, float]:
        """Take the next traced point; the slope and half the second derivative there, to predict the next."""
        t, d, s = (u - self.u0) / 32.0, self.decay, self.s  # scaled: sums of t^4 stay near 1
        t2 = t * t
        s[0], s[1], s[2] = d * s[0] + 1.0, d * s[1] + t, d * s[2] + t2
        s[3], s[4] = d * s[3] + t2 * t, d * s[4] + t2 * t2
        s[5], s[6], s[7] = d * s[5] + v, d * s[6] + v * t, d * s[7] + v * t2
        self.count += 1
        self.t_first = t if self.t_first is None else self.t_first
        if abs(t - self.t_first) * 32.0 < 8 or self.count % 4:
            return self.slope, self.k  # the seed's slope (voted by all the markings) beats a few pixels'
        c = solve3(*s)
        if abs(t - self.t_first) * 32.0 >= 12 and c is not None:
            self.slope = (c[1] + 2.0 * c[2] * t) / 32.0
            self.k = max(-self.max_k, min(self.max_k, c[2] / 1024.0))
        else:
            det = s[0] * s[2] - s[1] * s[1]
            self.slope = (s[0] * s[6] - s[1] * s[5]) / det / 32.0 if abs(det) > 1e-12 else self.slope
        return self.slope, self.k


def solve3(s0: float, s1: float, s2: float, s3: float, s4: float, t0: float, t1: float,
            t2: float) -> tuple[float, float, float] | None:
    """Normal equations of a quadratic least-squares fit, by Cramer's rule in plain floats
    (numpy's solver costs more than the arithmetic on 3 x 3)."""
    m0, m1, m2 = s2 * s4 - s3 * s3, s1 * s4 - s2 * s3, s1 * s3 - s2 * s2  # cofactors of row 0
    det = s0 * m0 - s1 * m1 + s2 * m2
    if abs(det) <= 1e-9 * max(abs(s0 * m0), 1.0):
        return None
    return ((t0 * m0 - s1 * (t1 * s4 - s3 * t2) + s2 * (t1 * s3 - s2 * t2)) / det,
            (s0 * (t1 * s4 - s3 * t2) - t0 * m1 + s2 * (s1 * t2 - t1 * s2)) / det,
            (s0 * (s2 * t2 - t1 * s3) - s1 * (s1 * t2 - t1 * s2) + t0 * m2) / det)


def grow(x: np.ndarray, y: np.ndarray, o: PixelLaneOptions) -> tuple[int, int, np.ndarray] | None:
    """The range [lo, hi) of traced points around the ego that one quadratic describes, and its
    coefficients: from the points within `near_m` of the ego, grown outward (ahead, then behind)
    as far as the residual stays small. A quadratic over a whole trace would bend to fit a
    straight that runs into an arc (the racetrack) and miss the ego's place by half a metre."""
    sums = PrefixSums(x, y)
    lo, hi = int(np.searchsorted(x, -o.near_m)), int(np.searchsorted(x, o.near_m, "right"))
    if hi - lo < o.min_pixels:  # hidden near the ego (by the ego itself): the nearest points
        mid = int(np.argmin(np.abs(x)))
        lo = max(min(mid - o.min_pixels // 2, len(x) - o.min_pixels), 0)
        hi = lo + o.min_pixels

    def ok(a: int, b: int) -> np.ndarray | None:
        c = sums.fit(a, b)
        return c if fits(x[a:b], y[a:b], c, o.fit_tol_m) else None

    coef = sums.fit(lo, hi)
    # Looser near the ego: a kink where two segments meet is no reason to drop the marking.
    if not fits(x[lo:hi], y[lo:hi], coef, 2.0 * o.fit_tol_m):
        return None
    whole = ok(0, len(x))  # the usual case on straight roads: one fit
    if whole is not None:
        return 0, len(x), whole
    for ahead in (True, False):
        good, bad = (hi, len(x) + 1) if ahead else (lo, -1)  # bisect the far end of the range
        while abs(bad - good) > 4:
            mid = (good + bad) // 2
            c = ok(lo, mid) if ahead else ok(mid, hi)
            good, bad, coef = (mid, bad, c) if c is not None else (good, mid, coef)
        lo, hi = (lo, good) if ahead else (good, hi)
    return lo, hi, sums.fit(lo, hi)


def fits(x: np.ndarray, y: np.ndarray, coef: np.ndarray, tol: float) -> bool:
    """Whether the residual, averaged over 5 points, stays within `tol` everywhere: single pixels
    sit up to half a pixel (0.29 m) off the line they draw, and a stripe or segment end can step
    by a row for 2-3 pixels; a bend that the quadratic misses lasts longer."""
    r = y - poly(coef, x)
    if len(r) >= 5:
        r = np.convolve(r, np.full(5, 0.2), "valid")
    return bool(np.max(np.abs(r)) <= tol)


class PrefixSums:
    """Prefix sums of x^k and x^k y: a least-squares polynomial over any range of points in O(1)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        p = np.stack([x ** k for k in range(5)] + [y * x ** k for k in range(3)])
        self.c = np.concatenate([np.zeros((8, 1)), np.cumsum(p, axis=1)], axis=1)
        self.x = x

    def fit(self, lo: int, hi: int) -> np.ndarray:
        """(c0, c1, c2); a straight line when the points span too little for a curve (< 6 m)."""
        s0, s1, s2, s3, s4, t0, t1, t2 = (self.c[:, hi] - self.c[:, lo]).tolist()
        if self.x[hi - 1] - self.x[lo] >= 6.0:
            c = solve3(s0, s1, s2, s3, s4, t0, t1, t2)
            if c is not None:
                return np.array(c)
        det = s0 * s2 - s1 * s1
        if abs(det) < 1e-9:  # one column: a constant
            return np.array([t0 / max(s0, 1.0), 0.0, 0.0])
        return np.array([(t0 * s2 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det, 0.0])
