"""The feedback store: which prediction ids were claimed, and the experiment's tallies.

Feedback on a prediction id counts once across every replica, version and restart, for as long
as the id is valid: the claim lives in a store all the processes share. The same write adds the
feedback to its version's tally (one SQLite transaction, one Redis script), so the tallies the
experiment reads are exactly the feedback that was answered 200, whatever restarted meanwhile.

- `memory`: one process (tests, a single instance); nothing survives a restart.
- `sqlite:///PATH`: the processes of one machine (`make up`, compose), in WAL mode.
- `redis://…` / `rediss://…`: a cluster (redis-py's asyncio client).

Assignments and predictions are counted on the hot path by the Prometheus counters of each
process; `CountsFlusher` adds what they gained to the store every second and at shutdown, so
those tallies survive a restart too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("restaurant_sentiment.model_service")
T = TypeVar("T")

# Tally counters: diners' feedback, feedback on API batch predictions, predictions, and the
# assignments of one split ("assignments:stable=70,canary=30").
CORRECT = "correct"
INCORRECT = "incorrect"
BATCH_CORRECT = "batch_correct"
BATCH_INCORRECT = "batch_incorrect"
PREDICTIONS = "predictions"
ASSIGNMENTS = "assignments:"
# version -> counter -> value
Tallies = dict[str, dict[str, int]]
SCHEMES = "memory, sqlite:///ABSOLUTE/PATH or redis://[:PASSWORD@]HOST[:PORT][/DB]"


class StoreUnavailable(RuntimeError):
    """The store could not be reached or written; nothing was counted."""


def outcome(accurate: bool, batch: bool) -> str:
    """The tally counter one feedback adds to."""
    if batch:
        return BATCH_CORRECT if accurate else BATCH_INCORRECT
    return CORRECT if accurate else INCORRECT


def check_url(url: str) -> str:
    """Return url if it names a store, else raise ValueError saying what is wrong."""
    if url == "memory":
        return url
    scheme = url.partition(":")[0]
    if scheme == "sqlite":
        path = sqlite_path(url)
        if not path.parent.is_dir():
            raise ValueError(f"the folder of the SQLite file, {path.parent}, does not exist")
        return url
    if scheme in {"redis", "rediss", "unix"}:
        import redis.asyncio as aioredis  # 0.13 s to import: for Redis only

        try:
            aioredis.ConnectionPool.from_url(url)
        except ValueError as exc:
            raise ValueError(f"not a Redis URL: {exc}") from None
        return url
    raise ValueError(f"{redacted(url)!r} is not a feedback store: use {SCHEMES}")


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:///PATH URL (an absolute path)."""
    if not url.startswith("sqlite:///"):
        raise ValueError("a SQLite store is sqlite:///ABSOLUTE/PATH, e.g. sqlite:///var/lib/fb.db")
    return Path(url.removeprefix("sqlite://"))


def redacted(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# One claim: (nonce, version, counter, expires at).
Claim = tuple[str, str, str, int]


class FeedbackStore(ABC):
    """Claims prediction ids once and keeps per-version tallies.

    Claims that arrive while the store is busy wait and go together in the next write (one
    transaction, one pipeline): under load a write serves many requests, at rest it adds no delay.
    """

    description: str

    def __init__(self) -> None:
        self._pending: list[tuple[Claim, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def claim(self, nonce: str, version: str, counter: str, expires_at: int) -> bool:
        """Claim an id and add one to version's counter, atomically; False if already claimed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(((nonce, version, counter, expires_at), future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        return await future

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._claim_many([item for item, _ in batch])
                except StoreUnavailable as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(StoreUnavailable(str(exc)))
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # a request cancelled meanwhile
                        future.set_result(result)
        finally:
            self._writer = None

    @abstractmethod
    async def _claim_many(self, claims: list[Claim]) -> list[bool]:
        """Claim each id in order, in one atomic write; True for each that was new."""

    @abstractmethod
    async def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add to (version, counter) tallies, all or none."""

    @abstractmethod
    async def tallies(self) -> Tallies:
        """Every version's counters."""

    async def purge(self) -> None:  # noqa: B027 - a store whose claims expire by themselves
        """Forget claims whose id has expired."""

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


class MemoryStore(FeedbackStore):
    """One process's memory: for tests and a single instance; remembers a bounded number."""

    def __init__(self, remember: int = 100_000) -> None:
        super().__init__()
        self.remember = remember
        self.description = "memory"
        self._claims: dict[str, int] = {}
        self._tallies: Tallies = {}

    async def claim(self, nonce: str, version: str, counter: str, expires_at: int) -> bool:
        # Nothing to wait for: claimed at once.
        return self._claim_one(nonce, version, counter, expires_at)

    async def _claim_many(self, claims: list[Claim]) -> list[bool]:
        return [self._claim_one(*item) for item in claims]

    def _claim_one(self, nonce: str, version: str, counter: str, expires_at: int) -> bool:
        expires = self._claims.get(nonce)
        if expires is not None and expires > time.time():
            return False
        self._claims[nonce] = expires_at
        if len(self._claims) > self.remember:
            # Bounded: the oldest claim goes first (one process's memory is no store of record).
            del self._claims[next(iter(self._claims))]
        self._bump(version, counter, 1)
        return True

    async def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (version, counter), value in counts.items():
            self._bump(version, counter, value)

    def _bump(self, version: str, counter: str, value: int) -> None:
        tally = self._tallies.setdefault(version, {})
        tally[counter] = tally.get(counter, 0) + value

    async def tallies(self) -> Tallies:
        return {version: dict(counts) for version, counts in self._tallies.items()}

    async def purge(self) -> None:
        now = time.time()
        self._claims = {n: e for n, e in self._claims.items() if e > now}


_TABLES = (
    "CREATE TABLE IF NOT EXISTS claims (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS tallies (version TEXT NOT NULL, counter TEXT NOT NULL, "
    "value INTEGER NOT NULL, PRIMARY KEY (version, counter)) WITHOUT ROWID",
)


def _create_tables(db: sqlite3.Connection) -> None:
    for statement in _TABLES:
        db.execute(statement)


# A claim that expired may be claimed again: the id no longer verifies, so it never is in fact.
_CLAIM = (
    "INSERT INTO claims (nonce, expires) VALUES (?, ?) "
    "ON CONFLICT (nonce) DO UPDATE SET expires = excluded.expires WHERE claims.expires <= ?"
)
_ADD = (
    "INSERT INTO tallies (version, counter, value) VALUES (?, ?, ?) "
    "ON CONFLICT (version, counter) DO UPDATE SET value = value + excluded.value"
)


class SqliteStore(FeedbackStore):
    """One SQLite file in WAL mode, shared by every process of one machine.

    A write takes some 50 µs, less than handing it to a thread would: it runs on the event loop
    when the file is free, and only when another process holds the write lock does it wait, in a
    worker thread, so that the event loop is never blocked by another process. Checkpoints (the
    WAL copied back into the database, some 15 ms with an fsync) run in that thread too, every
    `checkpoint_every` writes, instead of inside the write that crosses SQLite's threshold
    (`wal_autocheckpoint`), which would stop every request of the process meanwhile.
    """

    def __init__(self, path: Path, busy_timeout: float = 5.0, checkpoint_every: int = 200) -> None:
        super().__init__()
        self.path = path
        self.description = f"sqlite://{path}"
        self._busy_timeout = busy_timeout
        self._now: sqlite3.Connection | None = None  # the event loop's: never waits for a lock
        self._waiting: sqlite3.Connection | None = None  # the worker thread's: waits
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="feedback-db")
        self._checkpoint_every = checkpoint_every
        self._writes = 0  # on the event loop's connection since the last checkpoint
        self._checkpoint: asyncio.Future[None] | None = None

    def _open(self, event_loop: bool = False) -> sqlite3.Connection:
        """A connection to the file, set up in WAL mode with the tables (in the worker thread).

        Processes starting together on a new file race to switch it to WAL and create the
        tables; where waiting could deadlock SQLite answers "locked" at once instead of waiting,
        so the set-up is tried again until the busy timeout has passed.
        """
        db = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a commit survives a crash of the process (not of the machine).
                db.execute("PRAGMA synchronous=NORMAL")
                self._transaction(db, _create_tables)
                break
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    db.close()
                    raise
                time.sleep(0.005)
            except sqlite3.Error:
                db.close()
                raise
        if event_loop:
            # Never waits for a lock (a busy file sends the write to the worker thread), never
            # checkpoints inside a write: `_checkpoint_wal` does, in the worker thread.
            db.execute("PRAGMA busy_timeout=0")
            db.execute("PRAGMA wal_autocheckpoint=0")
        return db

    def _connect(self) -> sqlite3.Connection:
        if self._waiting is None:
            self._waiting = self._open()
        return self._waiting

    @staticmethod
    def _transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            if self._now is None:
                self._now = await loop.run_in_executor(self._thread, self._open, True)
            if self._checkpoint is None:  # else the write waits behind it, in the worker thread
                result = self._transaction(self._now, work)
                self._wrote()
                return result
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise StoreUnavailable(f"{self.description}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None
        # Another process is writing, or this one checkpointing: wait off the event loop.
        try:
            return await loop.run_in_executor(
                self._thread, lambda: self._transaction(self._connect(), work)
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    def _wrote(self) -> None:
        """Count a write on the event loop; every so many, checkpoint in the worker thread."""
        self._writes += 1
        if self._writes < self._checkpoint_every or self._checkpoint is not None:
            return
        self._writes = 0
        self._checkpoint = asyncio.get_running_loop().run_in_executor(
            self._thread, self._checkpoint_wal
        )
        self._checkpoint.add_done_callback(self._checkpointed)

    def _checkpoint_wal(self) -> None:
        """Copy the WAL into the database and empty it (in the worker thread).

        TRUNCATE, not PASSIVE: with writes going on beside it a passive checkpoint never finds
        the WAL complete, so no writer ever starts it again from the top and it grows for good.
        This process's writes wait behind it in the same thread; other processes' writers find
        the file busy and wait in their own worker threads, never on an event loop.
        """
        busy, _, _ = self._connect().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise sqlite3.OperationalError("the file stayed busy for the whole busy timeout")

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not done.cancelled() and (exc := done.exception()) is not None:
            # The WAL only grows until the next checkpoint succeeds: nothing is lost.
            log.warning("checkpoint of %s failed: %s", self.description, exc)

    async def _claim_many(self, claims: list[Claim]) -> list[bool]:
        now = int(time.time())

        def work(db: sqlite3.Connection) -> list[bool]:
            claimed = []
            for nonce, version, counter, expires_at in claims:
                fresh = db.execute(_CLAIM, (nonce, expires_at, now)).rowcount == 1
                if fresh:
                    db.execute(_ADD, (version, counter, 1))
                claimed.append(fresh)
            return claimed

        return await self._run(work)

    async def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        rows = [(version, counter, value) for (version, counter), value in counts.items()]
        await self._run(lambda db: db.executemany(_ADD, rows))

    async def tallies(self) -> Tallies:
        rows = await self._run(
            lambda db: db.execute("SELECT version, counter, value FROM tallies").fetchall()
        )
        found: Tallies = {}
        for version, counter, value in rows:
            found.setdefault(version, {})[counter] = int(value)
        return found

    async def purge(self) -> None:
        now = int(time.time())
        await self._run(lambda db: db.execute("DELETE FROM claims WHERE expires <= ?", (now,)))

    async def close(self) -> None:
        def shut() -> None:
            if self._waiting is not None:
                self._waiting.close()
                self._waiting = None

        await asyncio.get_running_loop().run_in_executor(self._thread, shut)
        self._thread.shutdown(wait=True)
        if self._now is not None:
            self._now.close()
            self._now = None


# Redis: one hash tag, so a Redis Cluster keeps the claims and the tallies in one slot.
_PREFIX = "{restaurant-sentiment}:feedback:"
_TALLIES = _PREFIX + "tallies"
_CLAIMS = _PREFIX + "claim:"
# A batch of claims in one atomic script. KEYS[1]: the tallies; KEYS[i + 1]: the key of claim i,
# ARGV[2i - 1] its time to live, ARGV[2i] its tally field. Returns 1 for each claim that was new.
_CLAIM_SCRIPT = """
local claimed = {}
for i = 1, #KEYS - 1 do
  if redis.call('SET', KEYS[i + 1], '1', 'NX', 'EX', ARGV[2 * i - 1]) then
    redis.call('HINCRBY', KEYS[1], ARGV[2 * i], 1)
    claimed[i] = 1
  else
    claimed[i] = 0
  end
end
return claimed
"""
_SEPARATOR = "|"


class RedisStore(FeedbackStore):
    """One Redis for every replica of every version: SET NX EX and HINCRBY in one script.

    A process writes one batch of claims at a time, as one EVALSHA on a connection of its own,
    straight through redis-py's connection (its protocol, authentication and hiredis parser)
    without the client's per-command layer: that layer (locks, retries, a timeout task for each
    write) cost 50 µs of CPU a call, a sixth of a whole feedback request. Tallies and counts go
    through the client and its pool.
    """

    def __init__(
        self,
        url: str,
        password: str | None = None,
        timeout: float = 2.0,
        max_connections: int = 32,
    ) -> None:
        # Imported here: 0.13 s of a service's start that only a Redis store needs.
        import redis.asyncio as aioredis
        from redis.exceptions import NoScriptError, RedisError

        super().__init__()
        self.description = redacted(url)
        self._error: type[Exception] = RedisError
        self._no_script: type[Exception] = NoScriptError
        self._timeout = timeout
        extra: dict[str, Any] = {"password": password} if password else {}
        # A request waits for a free connection (up to `timeout`) rather than failing at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            **extra,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        # The claims' connection: one timeout around each exchange instead of one per socket
        # operation; it connects (and authenticates) on first use and after an error.
        self._claims = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        self._script_sha = hashlib.sha1(_CLAIM_SCRIPT.encode()).hexdigest()

    async def _claim_many(self, claims: list[Claim]) -> list[bool]:
        now = int(time.time())
        keys = [_TALLIES]
        args: list[str | int] = []
        for nonce, version, counter, expires_at in claims:
            keys.append(_CLAIMS + nonce)
            args += [max(1, expires_at - now), f"{version}{_SEPARATOR}{counter}"]
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    results = await self._call("EVALSHA", self._script_sha, len(keys), *keys, *args)
                except self._no_script:  # a new or restarted server: load the script once
                    await self._call("SCRIPT", "LOAD", _CLAIM_SCRIPT)
                    results = await self._call("EVALSHA", self._script_sha, len(keys), *keys, *args)
        except (self._error, TimeoutError, OSError) as exc:
            # The reply may still be on its way: start again on a new connection.
            await self._claims.disconnect(nowait=True)
            raise StoreUnavailable(f"{self.description}: {exc or 'timed out'}") from None
        return [bool(r) for r in results]

    async def _call(self, *command: str | int) -> Any:
        connection = self._claims
        await connection.send_packed_command(connection.pack_command(*command), check_health=False)
        return await connection.read_response()

    async def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for (version, counter), value in counts.items():
                    pipe.hincrby(_TALLIES, f"{version}{_SEPARATOR}{counter}", value)
                await pipe.execute()
        except self._error as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def tallies(self) -> Tallies:
        try:
            raw = await self._redis.hgetall(_TALLIES)  # type: ignore[misc]
        except self._error as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None
        found: Tallies = {}
        for key, value in raw.items():
            version, _, counter = str(key).partition(_SEPARATOR)
            found.setdefault(version, {})[counter] = int(value)
        return found

    async def close(self) -> None:
        await self._claims.disconnect()
        await self._redis.aclose(close_connection_pool=True)


def open_store(url: str, password: str | None = None) -> FeedbackStore:
    """The store a checked URL names (connections are opened on first use)."""
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:"):
        return SqliteStore(sqlite_path(url))
    return RedisStore(url, password)


class CountsFlusher:
    """Adds what this process's assignment and prediction counters gained to the store.

    `read` returns the process's totals by (version, counter); what the store has not yet
    acknowledged is sent again with the next flush, so nothing is lost while it is down.
    """

    def __init__(
        self,
        store: FeedbackStore,
        read: Callable[[], dict[tuple[str, str], int]],
        every: float = 1.0,
        purge_every: float = 300.0,
    ) -> None:
        self.store = store
        self.read = read
        self.every = every
        self.purge_every = purge_every
        self._sent: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Send the counts gained since the last flush that reached the store."""
        totals = self.read()
        gained = {key: value - self._sent.get(key, 0) for key, value in totals.items()}
        gained = {key: value for key, value in gained.items() if value > 0}
        if not gained:
            return
        await self.store.add(gained)
        self._sent = totals

    async def _loop(self) -> None:
        last_purge = time.monotonic()
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.flush()
                if time.monotonic() - last_purge > self.purge_every:
                    await self.store.purge()
                    last_purge = time.monotonic()
            except StoreUnavailable as exc:
                log.warning("the feedback store is unavailable, counts wait: %s", exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="feedback-store-flush")

    async def stop(self) -> None:
        """Stop the loop and flush what is left (a replaced process hands over its counts)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except StoreUnavailable as exc:
            log.warning("counts not handed to the feedback store at shutdown: %s", exc)
