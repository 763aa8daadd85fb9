"""How robust is stable's calibration? python -m research.stable_calibration

GaussianNB's held-out ECE moves a lot with the split, so each calibration form is measured on
several 80/20 splits (the service's is seed 42): fitted on out-of-fold log-odds of the training
part, ECE on the held-out part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from research.calibration import (
    BinnedConfidence,
    PlattSlope,
    expected_calibration_error,
    out_of_fold_decision,
)
from research.experiment import load
from research.models import build_stable, decision, fit

FORMS: dict[str, Any] = {
    "Platt on log|z|": lambda: PlattSlope("log", ()),
    "log|z|, knot at 7": lambda: PlattSlope("log", (7.0,)),
    "binned, 6 bins a side": lambda: BinnedConfidence(6),
    "binned, 10 bins a side": lambda: BinnedConfidence(10),
}


def main() -> int:
    data = load()
    index = np.arange(len(data.texts))
    rows: dict[str, list[float]] = {name: [] for name in FORMS}
    seeds = (42, 1, 2, 3, 4, 5, 6, 7)
    for seed in seeds:
        train, test = train_test_split(
            index, test_size=0.2, random_state=seed, stratify=data.labels
        )
        x_train = [data.texts[i] for i in train]
        y_train = data.labels[train]
        z_oof = out_of_fold_decision(build_stable, x_train, list(y_train))
        pair = fit(build_stable(), x_train, list(y_train))
        z = decision(pair, [data.texts[i] for i in test])
        right = (z > 0).astype(int) == data.labels[test]
        for name, form in FORMS.items():
            conf = form().fit(z_oof, y_train).confidence(z)
            rows[name].append(expected_calibration_error(conf, right))
    print("| form | " + " | ".join(f"split {s}" for s in seeds) + " | mean | max |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for name, values in rows.items():
        cells = " | ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {cells} | {np.nanmean(values):.3f} | {np.nanmax(values):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
