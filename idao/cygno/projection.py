"""The projection fit of ../shared/docs/idao-facts.md ("Real feature distributions"), exactly as published.

The 5th-place IDAO team fitted each image's x and y projections over the
central window [230, 350) — the sum of pixel values along the other axis over
the same rows / columns — with ``N * (fr * Gauss(mu, sigma) + (1 - fr) *
Uniform(230, 350))``: a chi2 with sqrt(counts) errors on the bins with counts
> 0, starting at mu 290, sigma 6, fr 0.005, N = the projection's sum;
``signal = N * fr``. An event's ``sigma`` and ``signal`` are the means of its x
and y fits; a fit is valid when 1 < sigma < 30 px and signal > 0. The same
fit on simulated and real images is what calibrates the simulator
(``idao.cygno.calibrate``).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

LOW, HIGH = 230, 350  # the central window, pixels
_X = np.arange(LOW, HIGH, dtype=np.float64)


def _model(params: np.ndarray) -> np.ndarray:
    n, fr, mu, sigma = params
    gauss = np.exp(-0.5 * ((_X - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    return n * (fr * gauss + (1 - fr) / (HIGH - LOW))


def fit_projection(counts: np.ndarray) -> tuple[float, float, float]:
    """(mu, sigma, signal) of one projection (120 bins over [230, 350))."""
    counts = np.asarray(counts, np.float64)
    use = counts > 0
    error = np.sqrt(counts[use])

    def residuals(p):
        return (_model(p)[use] - counts[use]) / error

    start = np.array([counts.sum(), 0.005, 290.0, 6.0])
    fit = least_squares(residuals, start, x_scale=np.array([counts.sum(), 0.005, 10.0, 3.0]), method="lm",
                        max_nfev=2000)
    n, fr, mu, sigma = fit.x
    return float(mu), float(abs(sigma)), float(n * fr)


def event_features(img: np.ndarray) -> dict[str, float]:
    """``sigma``, ``signal`` (means of the x and y fits), ``mu_x``, ``mu_y`` and ``valid`` of one 576x576 image."""
    window = np.asarray(img, np.float64)[LOW:HIGH, LOW:HIGH]
    mu_x, sigma_x, signal_x = fit_projection(window.sum(axis=0))  # x: columns, summed over the window's rows
    mu_y, sigma_y, signal_y = fit_projection(window.sum(axis=1))
    sigma, signal = (sigma_x + sigma_y) / 2, (signal_x + signal_y) / 2
    return dict(sigma=sigma, signal=signal, mu_x=mu_x, mu_y=mu_y,
                valid=bool(1 < sigma < 30 and signal > 0 and np.isfinite([sigma, signal]).all()))
