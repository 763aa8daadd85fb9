"""The feedback store: an id's feedback counts once across replicas, versions and restarts; the
tallies the experiment reads survive a restart; a store that cannot be reached refuses feedback
(503, nothing counted) while predictions go on."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from restaurant_sentiment.model_service.__main__ import settings_error
from restaurant_sentiment.model_service.config import Settings
from restaurant_sentiment.model_service.feedback_store import (
    CORRECT,
    INCORRECT,
    PREDICTIONS,
    FeedbackStore,
    MemoryStore,
    RedisStore,
    SqliteStore,
    StoreUnavailable,
    open_store,
)
from restaurant_sentiment.model_service.routes.feedback import REPLAYED, STORE_DOWN
from restaurant_sentiment.values.names import ASSIGNMENT_HEADER
from tests.model_service.conftest import Serve
from tests.support import CHART_VALUES, PYTHON, free_port, redis_server

SPLIT = "stable=70,canary=30"
FAR = 2**40  # an expiry far in the future


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory"
    elif request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'feedback.db'}"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        yield url


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[FeedbackStore]:
    store = open_store(url)
    try:
        yield store
    finally:
        await store.close()


async def test_an_id_is_claimed_once_and_counted_with_its_claim(store_url: str) -> None:
    async with opened(store_url) as store:
        assert await store.claim("n1", "canary", CORRECT, FAR) is True
        assert await store.claim("n1", "canary", CORRECT, FAR) is False
        assert await store.claim("n1", "stable", INCORRECT, FAR) is False
        assert await store.claim("n2", "canary", INCORRECT, FAR) is True
        await store.add({("stable", PREDICTIONS): 5, ("stable", "assignments:" + SPLIT): 3})
        assert await store.tallies() == {
            "canary": {CORRECT: 1, INCORRECT: 1},
            "stable": {PREDICTIONS: 5, "assignments:" + SPLIT: 3},
        }


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
async def test_two_connections_racing_for_the_same_ids_count_each_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite://{tmp_path / 'feedback.db'}"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
    nonces = [f"id-{i}" for i in range(300)]
    async with opened(url) as one, opened(url) as two:
        results = await asyncio.gather(
            *(store.claim(n, "stable", CORRECT, FAR) for n in nonces for store in (one, two))
        )
        assert sum(results) == len(nonces)
        assert (await one.tallies()) == (await two.tallies()) == {"stable": {CORRECT: 300}}


async def test_an_expired_claim_is_forgotten(tmp_path: Path) -> None:
    for url in ("memory", f"sqlite://{tmp_path / 'feedback.db'}"):
        async with opened(url) as store:
            gone = int(time.time()) - 1
            assert await store.claim("old", "stable", CORRECT, gone) is True
            await store.purge()
            assert await store.claim("old", "stable", CORRECT, FAR) is True
            assert await store.claim("old", "stable", CORRECT, FAR) is False
    db = SqliteStore(tmp_path / "feedback.db")
    try:
        assert await db.claim("new", "stable", CORRECT, int(time.time()) - 1) is True
        await db.purge()
        assert await db.tallies() == {"stable": {CORRECT: 3}}
        assert db._connect().execute("SELECT nonce FROM claims").fetchall() == [("old",)]
    finally:
        await db.close()


@pytest.mark.slow
async def test_a_redis_claim_lives_as_long_as_its_id(redis_url: str) -> None:
    store = RedisStore(redis_url)
    try:
        assert await store.claim("n-ttl", "stable", CORRECT, int(time.time()) + 3600) is True
    finally:
        await store.close()
    keys = [k for k in redis.Redis.from_url(redis_url).keys("*claim:n-ttl")]
    assert len(keys) == 1
    assert 3590 <= redis.Redis.from_url(redis_url).ttl(keys[0]) <= 3600


@pytest.mark.slow
async def test_a_redis_server_that_lost_the_claim_script_gets_it_again(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    async with opened(redis_url) as store:
        assert await store.claim("before", "stable", CORRECT, FAR) is True
        redis.Redis.from_url(redis_url).script_flush()  # as a restarted server has
        assert await store.claim("after", "stable", CORRECT, FAR) is True
        assert await store.claim("before", "stable", CORRECT, FAR) is False
        assert await store.tallies() == {"stable": {CORRECT: 2}}


@pytest.mark.slow
async def test_a_dropped_redis_connection_fails_one_write_at_most_then_reconnects(
    redis_url: str,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    async with opened(redis_url) as store:
        assert await store.claim("before", "stable", CORRECT, FAR) is True
        redis.Redis.from_url(redis_url).client_kill_filter(_type="normal", skipme=True)
        try:
            first = await store.claim("after", "stable", CORRECT, FAR)
        except StoreUnavailable:  # the write found the connection closed: nothing counted
            first = await store.claim("after", "stable", CORRECT, FAR)
        assert first is True
        assert await store.claim("after", "stable", CORRECT, FAR) is False
        assert await store.tallies() == {"stable": {CORRECT: 2}}


async def test_sqlite_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    # Checkpoints run beside the event loop, not inside a write: the WAL must still be copied
    # back and reused, or it grows by a few pages with every claim (16 MB for these).
    async with opened(f"sqlite://{tmp_path / 'feedback.db'}") as store:
        for i in range(2000):
            assert await store.claim(f"id-{i}", "stable", CORRECT, FAR) is True
        assert (tmp_path / "feedback.db-wal").stat().st_size < 8 * 2**20
    async with opened(f"sqlite://{tmp_path / 'feedback.db'}") as store:
        assert await store.tallies() == {"stable": {CORRECT: 2000}}


async def predict(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    answer = await client.post(
        "/predict",
        json={"review": "Lovely fish.", "restaurantName": "Gourmet Haven"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def feedback_for(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"restaurantName": "Gourmet Haven", "accurate": True,
            "prediction": prediction["prediction"],
            "predictionId": prediction["predictionId"]}  # fmt: skip


async def test_a_replay_to_another_replica_or_version_or_after_a_restart_answers_409(
    make_client: Serve, tmp_path: Path
) -> None:
    store = f"sqlite://{tmp_path / 'feedback.db'}"
    async with make_client(feedback_store=store) as first:
        made = await predict(first, **{ASSIGNMENT_HEADER: SPLIT})
        assert (await first.post("/model-accuracy", json=feedback_for(made))).status_code == 200
        async with (
            make_client(feedback_store=store) as replica,
            make_client(feedback_store=store, model_version="canary") as canary,
        ):
            for other in (replica, canary):
                again = await other.post("/model-accuracy", json=feedback_for(made))
                assert again.status_code == 409
                assert again.json() == {"detail": REPLAYED}
    # `first` has stopped: a new process finds the claim and the counts it handed over.
    async with make_client(feedback_store=store) as restarted:
        again = await restarted.post("/model-accuracy", json=feedback_for(made))
        assert again.status_code == 409
    async with opened(store) as reader:
        assert await reader.tallies() == {
            "stable": {CORRECT: 1, PREDICTIONS: 1, "assignments:" + SPLIT: 1}
        }


async def test_every_process_answers_the_counts_of_all_including_the_stopped_ones(
    make_client: Serve, tmp_path: Path
) -> None:
    store = f"sqlite://{tmp_path / 'feedback.db'}"
    async with make_client(feedback_store=store, model_version="canary") as first:
        made = await predict(first, **{ASSIGNMENT_HEADER: SPLIT})
        wrong = {**feedback_for(made), "accurate": False}
        assert (await first.post("/model-accuracy", json=wrong)).status_code == 200
    # `first` has stopped and handed over its counts; a new process of the other version reads
    # them, and the feedback it takes itself.
    async with make_client(feedback_store=store) as second:
        made = await predict(second)
        assert (await second.post("/model-accuracy", json=feedback_for(made))).status_code == 200
        answer = await second.get("/experiment/counts")
        assert answer.status_code == 200
        counts = answer.json()
    assert counts["store"] == store
    zero = {"predictions": 0, "correct": 0, "incorrect": 0, "batchCorrect": 0, "batchIncorrect": 0}
    assert counts["versions"]["canary"] == {
        **zero, "predictions": 1, "incorrect": 1, "assignments": {SPLIT: 1}
    }  # fmt: skip
    # The stable process is still running when it answers: its feedback is in, its
    # prediction reaches the store within a second.
    assert counts["versions"]["stable"]["correct"] == 1
    assert counts["versions"]["stable"]["assignments"] == {}


@pytest.mark.parametrize("down", ["redis", "sqlite"])
async def test_a_store_out_of_reach_refuses_feedback_but_predictions_go_on(
    make_client: Serve, tmp_path: Path, down: str
) -> None:
    if down == "redis":
        url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    else:
        (tmp_path / "feedback.db").mkdir()  # a file that cannot be opened as a database
        url = f"sqlite://{tmp_path / 'feedback.db'}"
    async with make_client(feedback_store=url) as client:
        made = await predict(client)
        answer = await client.post("/model-accuracy", json=feedback_for(made))
        assert answer.status_code == 503
        assert answer.json() == {"detail": STORE_DOWN}
        without_id = {"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 1}
        assert (await client.post("/model-accuracy", json=without_id)).status_code == 503
        counts = await client.get("/experiment/counts")
        assert counts.status_code == 503
        assert "feedback store cannot be reached" in counts.json()["detail"]
        metrics = (await client.get("/metrics")).text
        assert "true_pos_predictions_total{" in metrics
        assert not [
            line
            for line in metrics.splitlines()
            if "_predictions_total{" in line
            and line.startswith(("true_", "false_"))
            and not line.endswith(" 0.0")
        ]
        assert (await predict(client))["modelVersion"] == "stable"


async def test_a_sqlite_store_that_errors_says_so(tmp_path: Path) -> None:
    (tmp_path / "feedback.db").mkdir()
    store = SqliteStore(tmp_path / "feedback.db")
    try:
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            await store.claim("n", "stable", CORRECT, FAR)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/feedback", "is not a feedback store: use memory, sqlite:///"),
        ("sqlite://relative.db", "sqlite:///ABSOLUTE/PATH"),
        ("sqlite:///no/such/folder/f.db", "the folder of the SQLite file, /no/such/folder"),
        ("redis://host:notaport/0", "not a Redis URL"),
    ],
)
def test_a_store_setting_that_cannot_be_read_is_named(url: str, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        Settings(values_file=CHART_VALUES, feedback_store=url)
    text = settings_error(caught.value)
    assert text.startswith("setting MODEL_SERVICE_FEEDBACK_STORE (--feedback-store): "), text
    assert message in text


def test_a_password_in_the_url_is_never_shown() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        Settings(values_file=CHART_VALUES, feedback_store="mysql://user:hunter2@db/x")
    assert "hunter2" not in settings_error(caught.value)


@pytest.mark.slow
async def test_replicas_on_one_redis_count_once_and_keep_tallies(
    make_client: Serve, redis_url: str
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    async with make_client(feedback_store=redis_url) as one:
        made = [await predict(one) for _ in range(5)]
        async with make_client(feedback_store=redis_url, model_version="canary") as two:
            answers = await asyncio.gather(
                *(c.post("/model-accuracy", json=feedback_for(m)) for m in made for c in (one, two))
            )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [409] * 5
    async with opened(redis_url) as reader:
        tallies = await reader.tallies()
    assert tallies["stable"][CORRECT] == 5
    assert tallies["stable"][PREDICTIONS] == 5


async def test_memory_remembers_a_bounded_number_of_claims() -> None:
    store = MemoryStore(remember=3)
    for n in range(5):
        assert await store.claim(f"n{n}", "stable", CORRECT, FAR) is True
    assert await store.claim("n4", "stable", CORRECT, FAR) is False
    assert await store.claim("n0", "stable", CORRECT, FAR) is True  # forgotten: the oldest
    assert await store.tallies() == {"stable": {CORRECT: 6}}


CLAIMER = """
import asyncio, sys
from pathlib import Path
from restaurant_sentiment.model_service.feedback_store import CORRECT, SqliteStore

async def main() -> None:
    store = SqliteStore(Path(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.readline()  # both start claiming at once
    won = sum(await asyncio.gather(
        *(store.claim(f"id-{n}", "stable", CORRECT, 2**40) for n in range(600))
    ))
    await store.close()
    print(won, flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
def test_two_processes_racing_on_one_sqlite_file_count_each_id_once(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", CLAIMER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    won = [int(proc.communicate(timeout=120)[0].strip()) for proc in procs]
    assert sum(won) == 600, won

    async def read() -> dict[str, dict[str, int]]:
        async with opened(f"sqlite://{path}") as store:
            return await store.tallies()

    assert asyncio.run(read()) == {"stable": {CORRECT: 600}}
