"""The experiment's counts read from the model-services' feedback store.

The store holds every feedback a client was answered 200 for, tallied with its claim, and the
assignments and predictions each process handed over: unlike a process's /metrics, nothing
starts again from zero when `make restart` replaces a process.
"""

from __future__ import annotations

from restaurant_sentiment.experiment.sources import Observation, SourceError, VersionCounts
from restaurant_sentiment.model_service.feedback_store import (
    ASSIGNMENTS,
    CORRECT,
    INCORRECT,
    PREDICTIONS,
    StoreUnavailable,
    check_url,
    open_store,
    redacted,
    sqlite_path,
)


async def from_store(
    url: str, split: str | None = None, password: str | None = None
) -> Observation:
    """Per-version counts from the store at url (assignments only under `split`)."""
    try:
        check_url(url)
        if url.startswith("sqlite:") and not sqlite_path(url).is_file():
            raise ValueError(f"{sqlite_path(url)} does not exist")
    except ValueError as exc:
        raise SourceError(f"feedback store {redacted(url)}: {exc}") from None
    store = open_store(url, password)
    try:
        tallies = await store.tallies()
    except StoreUnavailable as exc:
        raise SourceError(f"the feedback store cannot be read: {exc}") from None
    finally:
        await store.close()
    counts = {
        version: VersionCounts(
            assignments=tally.get(ASSIGNMENTS + split, 0) if split else 0,
            predictions=tally.get(PREDICTIONS, 0),
            correct=tally.get(CORRECT, 0),
            incorrect=tally.get(INCORRECT, 0),
        )
        for version, tally in sorted(tallies.items())
    }
    return Observation(
        source="store",
        description=f"the feedback store {store.description} (every process, across restarts)",
        counts=counts,
        split=split,
    )
