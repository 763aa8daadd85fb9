"""Signed prediction ids: feedback can be trusted to name a real prediction, once."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class PredictionIdError(ValueError):
    """A prediction id that must not be counted; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class PredictionRef:
    """What a valid id says: which version predicted what."""

    version: str
    prediction: int
    nonce: str


class PredictionIds:
    """Issues and verifies ids, and remembers recently used ones (bounded)."""

    def __init__(self, secret: str, max_age: int, remember: int = 100_000) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="prediction-id")
        self._max_age = max_age
        self._used: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def issue(self, version: str, prediction: int) -> str:
        """A new signed id for a prediction."""
        return self._serializer.dumps([version, prediction, secrets.token_hex(8)])

    def verify(self, token: str) -> PredictionRef:
        """Check the signature and age of an id."""
        try:
            version, prediction, nonce = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired as exc:
            raise PredictionIdError("predictionId has expired") from exc
        except (BadSignature, ValueError, TypeError) as exc:
            raise PredictionIdError("predictionId is not valid") from exc
        if not isinstance(version, str) or prediction not in (0, 1) or not isinstance(nonce, str):
            raise PredictionIdError("predictionId is not valid")
        return PredictionRef(version, prediction, nonce)

    def claim(self, ref: PredictionRef) -> None:
        """Mark an id as used; a second claim fails."""
        if ref.nonce in self._used:
            raise PredictionIdError("feedback for this predictionId was already recorded")
        self._used[ref.nonce] = None
        if len(self._used) > self._remember:
            self._used.popitem(last=False)
