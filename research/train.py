"""Train stable and the recommended canary with their calibrations: python -m research.train.

Writes, per version, the service's two artefacts plus a third, the calibration:
``OUT/<version>/{c1_BoW_Sentiment_Model.pkl, c2_Classifier_Sentiment_Model,
c3_Calibration.pkl, metadata.json}``. As in the service, the served model is fitted on the
training 80% (so the held-out 20% stays unseen); the calibration is fitted on that split's
out-of-fold log-odds. Needs ``vaderSentiment`` here, at training time only: the lexicon is copied
into the canary's vectoriser.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from research.calibration import BinnedConfidence, PlattSlope, describe, out_of_fold_decision
from research.experiment import CORPUS, FOLDS, SEED, load
from research.features import read_vader_lexicon
from research.models import CanaryOptions, build_canary, build_stable, fit

VECTORIZER_FILE = "c1_BoW_Sentiment_Model.pkl"
CLASSIFIER_FILE = "c2_Classifier_Sentiment_Model"
CALIBRATION_FILE = "c3_Calibration.pkl"

# The design chosen by cross-validation (research/NOTES.md).
CANARY = CanaryOptions(
    c=32.0, word_ngrams=(1, 2), sublinear=True, lexicon="sums", lexicon_scale=1.0
)
# The calibration per version (research/NOTES.md): GaussianNB's accuracy is not monotone in its
# log-odds, so stable gets histogram binning per verdict side; the canary a Platt slope.
CALIBRATION: dict[str, Any] = {
    "stable": lambda: BinnedConfidence(6),
    "canary": lambda: PlattSlope("linear"),
}


def builders(lexicon: dict[str, float]) -> dict[str, Any]:
    return {"stable": build_stable, "canary": lambda: build_canary(CANARY, lexicon)}


def train(out: Path, data_path: Path = CORPUS) -> dict[str, dict[str, Any]]:
    data = load(data_path)
    lexicon = read_vader_lexicon()
    x_train = [data.texts[i] for i in data.train]
    y_train = data.labels[data.train].tolist()
    written = {}
    for version, build in builders(lexicon).items():
        vectorizer, classifier = fit(build(), x_train, y_train)
        z_oof = out_of_fold_decision(build, x_train, y_train, FOLDS, SEED)
        calibrator = CALIBRATION[version]().fit(z_oof, np.asarray(y_train))
        folder = out / version
        folder.mkdir(parents=True, exist_ok=True)
        for name, obj in (
            (VECTORIZER_FILE, vectorizer),
            (CLASSIFIER_FILE, classifier),
            (CALIBRATION_FILE, calibrator),
        ):
            joblib.dump(obj, folder / name)
        meta = {
            "version": version,
            "design": "stable (seed)" if version == "stable" else CANARY.label(),
            "calibration": describe(calibrator),
            "trained_on": len(x_train),
            "artefacts": {
                name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                for name in (VECTORIZER_FILE, CLASSIFIER_FILE, CALIBRATION_FILE)
            },
        }
        (folder / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        written[version] = meta
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=Path("research/out"))
    args = parser.parse_args(argv)
    for version, meta in train(args.out, args.data).items():
        print(f"{version}: {meta['design']}; calibration {meta['calibration']}")
    print(f"Artefacts written to {args.out}/{{stable,canary}}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
