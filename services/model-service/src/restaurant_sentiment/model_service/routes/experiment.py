"""The experiment's counts, as the shared feedback store holds them."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from restaurant_sentiment.model_service import openapi
from restaurant_sentiment.model_service.feedback_store import (
    ASSIGNMENTS,
    BATCH_CORRECT,
    BATCH_INCORRECT,
    CORRECT,
    INCORRECT,
    PREDICTIONS,
    StoreUnavailable,
)
from restaurant_sentiment.model_service.routes.deps import FeedbackStoreDep
from restaurant_sentiment.model_service.schemas import ExperimentCounts, VersionCounts

router = APIRouter(tags=["experiment"])
STORE_DOWN = "the feedback store cannot be reached, so the counts cannot be read now"
log = logging.getLogger("restaurant_sentiment.model_service")


@router.get(
    "/experiment/counts",
    response_model=ExperimentCounts,
    operation_id=openapi.GET_EXPERIMENT_COUNTS,
    summary="Every version's counts from the feedback store",
    responses={503: openapi.error("The feedback store cannot be reached.", down=STORE_DOWN)},
)
async def experiment_counts(store: FeedbackStoreDep) -> ExperimentCounts:
    """Predictions, feedback and assignments per version, from the store every process shares.

    Feedback is exactly what clients were answered 200 for; predictions and assignments reach
    the store within a second, and a process hands over the rest when it stops, so nothing
    starts again from zero when a process is replaced (unlike one process's /metrics). With the
    `memory` store these are this process's counts only.
    """
    try:
        tallies = await store.tallies()
    except StoreUnavailable as exc:
        log.warning("experiment counts refused: %s", exc)
        raise HTTPException(503, STORE_DOWN) from None
    versions = {}
    for version, tally in sorted(tallies.items()):
        versions[version] = VersionCounts(
            predictions=tally.get(PREDICTIONS, 0),
            correct=tally.get(CORRECT, 0),
            incorrect=tally.get(INCORRECT, 0),
            batchCorrect=tally.get(BATCH_CORRECT, 0),
            batchIncorrect=tally.get(BATCH_INCORRECT, 0),
            assignments={
                key.removeprefix(ASSIGNMENTS): value
                for key, value in sorted(tally.items())
                if key.startswith(ASSIGNMENTS)
            },
        )
    return ExperimentCounts(store=store.description, versions=versions)
