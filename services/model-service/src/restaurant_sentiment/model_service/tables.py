"""The serving tables of a model version, written at training time next to the sklearn artefacts.

Training reduces the fitted sklearn objects to plain tables (``artefacts.tables``) and stores
them in one ``.npz`` file: numpy arrays and a JSON header, read with ``allow_pickle=False``, so
the serving process starts without unpickling (or even importing) sklearn. The header records
the sha256 of each sklearn artefact the tables were reduced from; a folder whose artefacts are
not those any more is read through sklearn again (``model.Loading``), never served stale.
No sklearn here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# Raised whenever what is stored or read changes shape; a file of another format is refused.
FORMAT = 1
_KINDS = ("linear", "gnb")
# Terms and lexicon words hold no newline: preprocessing emits words of [a-z0-9_] only.
_SEPARATOR = "\n"


class TablesError(ValueError):
    """A tables file that cannot be served; the message names the file and what is wrong."""


def _text(values: list[str]) -> np.ndarray:
    return np.frombuffer(_SEPARATOR.join(values).encode("utf-8"), dtype=np.uint8)


def _words(array: np.ndarray) -> list[str]:
    text = array.tobytes().decode("utf-8")
    return text.split(_SEPARATOR) if text else []


def write_tables(tables: dict[str, Any], path: Path, sources: dict[str, str]) -> bool:
    """Store ``artefacts.tables`` output, with the sha256 of each artefact it came from.

    Returns False (and writes nothing) for tables that this format cannot hold.
    """
    vocabulary: dict[str, int] = tables["vocabulary"]
    terms = sorted(vocabulary, key=vocabulary.__getitem__)
    if [vocabulary[t] for t in terms] != list(range(len(terms))):
        return False
    if any(_SEPARATOR in term for term in terms):
        return False
    lexicon = tables["lexicon"]
    header = {
        "format": FORMAT,
        "sources": sources,
        "kind": tables["kind"],
        "classes": [int(c) for c in tables["classes"]],
        "min_len": int(tables["min_len"]),
        "ngram_range": [int(n) for n in tables["ngram_range"]],
        "binary": bool(tables["binary"]),
        "sublinear": bool(tables["sublinear"]),
        "l2": bool(tables["l2"]),
        # JSON writes a float's shortest repr, which reads back as the very same float.
        "bias": float(tables["bias"]),
        "calibration": tables["calibration"],
        "lexicon_weights": None if lexicon is None else [float(w) for w in lexicon["weights"]],
    }
    arrays: dict[str, np.ndarray] = {
        "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        "terms": _text(terms),
        "weights": np.asarray(tables["weights"], dtype=np.float64),
    }
    for name in ("idf", "square"):
        if tables[name] is not None:
            arrays[name] = np.asarray(tables[name], dtype=np.float64)
    if lexicon is not None:
        words = list(lexicon["signed"])
        if any(_SEPARATOR in word for word in words):
            return False
        arrays["lexicon_words"] = _text(words)
        arrays["lexicon_values"] = np.asarray([lexicon["signed"][w] for w in words], np.float64)
    buffer = io.BytesIO()
    # numpy's own .npz layout, written with a fixed date so the same model gives the same bytes.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
    path.write_bytes(buffer.getvalue())
    return True


def _floats(stored: Any, name: str, length: int, where: Path) -> np.ndarray:
    if name not in stored.files:
        raise TablesError(f"model artefact {where} has no {name} table")
    array = stored[name]
    if array.dtype != np.float64 or array.shape != (length,):
        raise TablesError(
            f"model artefact {where}: the {name} table has shape {array.shape} of {array.dtype}, "
            f"expected ({length},) of float64"
        )
    return np.asarray(array)


def _calibration(value: Any, where: Path) -> dict[str, Any] | None:
    """A stored calibration table, checked for the shape ``calibration.confidence_one`` reads."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "platt" and isinstance(value.get("slope"), float) and value["slope"] > 0.0:
        return {"type": "platt", "slope": value["slope"]}
    if kind == "binned":
        edges, values = value.get("edges"), value.get("values")
        sides = (
            isinstance(edges, list)
            and isinstance(values, list)
            and len(edges) == len(values) == 2
            and all(
                isinstance(e, list) and isinstance(v, list) and len(v) == len(e) + 1
                for e, v in zip(edges, values, strict=True)
            )
        )
        if sides:
            return {
                "type": "binned",
                "edges": [[float(x) for x in side] for side in edges],
                "values": [[float(x) for x in side] for side in values],
            }
    raise TablesError(f"model artefact {where} holds no calibration table of a known shape")


def read_tables(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tables of a file written by ``write_tables``, and the sha256 of their sources.

    A file that is not one (truncated, another format, inconsistent tables) raises TablesError.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            header = json.loads(stored["header"].tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                found = header.get("format") if isinstance(header, dict) else None
                raise TablesError(
                    f"model artefact {path} has format {found!r}; this service reads format "
                    f"{FORMAT} (train the models again)"
                )
            terms = _words(stored["terms"])
            n = len(terms)
            kind = header["kind"]
            if kind not in _KINDS:
                raise TablesError(f"model artefact {path} holds a model of unknown kind {kind!r}")
            tables: dict[str, Any] = {
                "vocabulary": dict(zip(terms, range(n), strict=True)),
                "kind": kind,
                "classes": [int(c) for c in header["classes"]],
                "min_len": int(header["min_len"]),
                "ngram_range": tuple(int(x) for x in header["ngram_range"]),
                "binary": bool(header["binary"]),
                "sublinear": bool(header["sublinear"]),
                "l2": bool(header["l2"]),
                "bias": float(header["bias"]),
                "calibration": _calibration(header["calibration"], path),
                "weights": _floats(stored, "weights", n, path),
                "idf": _floats(stored, "idf", n, path) if "idf" in stored.files else None,
                "square": _floats(stored, "square", n, path) if kind == "gnb" else None,
                "lexicon": None,
            }
            if header["lexicon_weights"] is not None:
                words = _words(stored["lexicon_words"])
                values = _floats(stored, "lexicon_values", len(words), path)
                tables["lexicon"] = {
                    "signed": dict(zip(words, values.tolist(), strict=True)),
                    "weights": tuple(float(w) for w in header["lexicon_weights"]),
                }
            sources = {str(k): str(v) for k, v in header["sources"].items()}
    except TablesError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError,
            zipfile.BadZipFile, UnicodeDecodeError) as exc:  # fmt: skip
        raise TablesError(f"model artefact {path} is corrupt or unreadable: {exc!r}") from exc
    if len(tables["classes"]) != 2 or len(tables["ngram_range"]) != 2:
        raise TablesError(f"model artefact {path} does not describe a binary n-gram model")
    if len(tables["vocabulary"]) != len(terms):
        raise TablesError(f"model artefact {path} lists a term twice")
    lexicon = tables["lexicon"]
    if lexicon is not None and len(lexicon["weights"]) != 2:
        raise TablesError(
            f"model artefact {path} holds {len(lexicon['weights'])} lexicon weights, not 2"
        )
    return tables, sources
