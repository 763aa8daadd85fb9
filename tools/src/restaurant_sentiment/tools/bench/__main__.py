"""Measure the model-service's speed targets in one run on this machine and print ratios.

Targets (name: what, default):
- scoring-speedup: single-review scoring vs sklearn's pipeline.predict([review]), >= 20x;
- predict-vs-healthz: POST /predict vs GET /healthz on one uvicorn worker, >= 0.7x;
- batch-reviews: POST /predict/batch, 1,000 reviews a request, >= 50,000 reviews/s;
- rss-mb: resident memory after start, <= 150 MB;
- start-seconds: start to ready, < 2 s;
- feedback-vs-memory: POST /model-accuracy with the SQLite and the Redis feedback store vs the
  in-memory one, >= 0.8x.

HTTP load comes from wrk (Debian/Ubuntu: `apt-get install wrk`), one thread, in alternating
rounds so that every figure compared sees the same background load; a ratio is the median of
its rounds. Redis is measured when redis-server is installed. Exits 1 on a missed target, 2 when
a server or wrk cannot run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sklearn.pipeline import FunctionTransformer, make_pipeline

from restaurant_sentiment.model_service.artefacts import is_gaussian_nb
from restaurant_sentiment.model_service.corpus import load_corpus
from restaurant_sentiment.model_service.model import SentimentModel
from restaurant_sentiment.model_service.prediction_ids import PredictionIds
from restaurant_sentiment.model_service.preprocess import preprocess
from restaurant_sentiment.tools.bench import wrk
from restaurant_sentiment.tools.bench.targets import target_type
from restaurant_sentiment.tools.paths import CHART_VALUES, CORPUS, MODEL_DIR, ROOT
from restaurant_sentiment.tools.procs import NotReady, free_port, rss_bytes, start, stop, wait_http
from restaurant_sentiment.values import load_values

# name -> (default, whether a figure must reach at least it (True) or stay below it (False))
TARGETS: dict[str, tuple[float, bool]] = {
    "scoring-speedup": (20.0, True),
    "predict-vs-healthz": (0.7, True),
    "batch-reviews": (50_000.0, True),
    "rss-mb": (150.0, False),
    "start-seconds": (2.0, False),
    "feedback-vs-memory": (0.8, True),
}
CONNECTIONS = 8
BATCH_SIZE = 1000
REVIEW = "The pasta was divine but the waiter was rude."
FEEDBACK_SECRET = secrets.token_urlsafe(32)
# Ids written for one feedback run, per second of it: well above what one process answers.
IDS_PER_SECOND = 12_000


class BenchError(RuntimeError):
    """A server or wrk could not run, or a request failed: no figure to judge."""


class Judge:
    """Collects each figure against its target and the targets it missed."""

    def __init__(self, targets: dict[str, float]) -> None:
        self.targets = targets
        self.missed: list[str] = []

    def __call__(self, name: str, figure: float, shown: str) -> str:
        """Judge `figure`; return the target as printed after it."""
        target = self.targets[name]
        at_least = TARGETS[name][1]
        met = figure >= target if at_least else figure < target
        sign = ">=" if at_least else "<"
        if not met:
            self.missed.append(f"{name} {shown}, target {sign} {target:,g}")
        return f"(target {sign} {target:,g})"


def bench_scoring(model_dir: Path, reviews: list[str]) -> list[tuple[str, float, float, float]]:
    """Per-review time of sklearn's pipeline.predict([review]) and of the serving path.

    The pipeline is made of the version's stored objects: preprocessing, the stored vectoriser
    (for the canary a FeatureUnion of TF-IDF n-grams and the lexicon features) and classifier.
    The serving path does more (it also computes the calibrated confidence).
    """
    rows = []
    sample = reviews[:300]
    for version in ("stable", "canary"):
        model = SentimentModel.load(model_dir, version)
        stored = model.sklearn_objects()
        steps: list[object] = [FunctionTransformer(lambda xs: [preprocess(x) for x in xs])]
        steps.append(stored.vectorizer)
        if is_gaussian_nb(stored.classifier):
            steps.append(FunctionTransformer(lambda m: m.toarray(), accept_sparse=True))
        pipeline = make_pipeline(*steps, stored.classifier)
        assert [int(pipeline.predict([r])[0]) for r in sample[:50]] == [
            model.predict(r).prediction for r in sample[:50]
        ]
        began = time.perf_counter()
        for review in sample:
            pipeline.predict([review])
        slow = (time.perf_counter() - began) / len(sample)
        began = time.perf_counter()
        for _ in range(10):
            for review in sample:
                model.predict(review)
        fast = (time.perf_counter() - began) / (10 * len(sample))
        rows.append((version, slow * 1e6, fast * 1e6, slow / fast))
    return rows


def load(
    port: int,
    path: str,
    seconds: float,
    connections: int,
    body: str | None = None,
    bodies: Path | None = None,
) -> wrk.Figures:
    """wrk against one path of a local server; BenchError if any request failed."""
    request = wrk.Request(f"http://127.0.0.1:{port}{path}", "bench", body=body, bodies=bodies)
    try:
        figures = wrk.run(request, seconds, connections)
    except wrk.WrkError as exc:
        raise BenchError(str(exc)) from None
    if figures.failed:
        raise BenchError(f"{figures.failed} of {figures.requests} requests to {path} failed")
    return figures


def feedback_bodies(folder: Path, restaurant: str, seconds: int) -> Path:
    """A file of feedback on never-seen predictions (ids signed with the servers' key)."""
    ids = PredictionIds(FEEDBACK_SECRET, max_age=3600)
    count = IDS_PER_SECOND * seconds
    tokens = ids.issue_many("canary", [1] * count, batch=False)
    bodies = (
        {"restaurantName": restaurant, "accurate": True, "prediction": 1, "predictionId": t}
        for t in tokens
    )
    handle, name = tempfile.mkstemp(prefix="feedback-", suffix=".jsonl", dir=folder)
    with open(handle, "w") as out:
        out.writelines(json.dumps(body) + "\n" for body in bodies)
    return Path(name)


def server_command(port: int, model_dir: Path) -> list[str]:
    return [sys.executable, "-m", "restaurant_sentiment.model_service", "--port", str(port),
            "--model-version", "canary", "--model-dir", str(model_dir),
            "--values-file", str(CHART_VALUES), "--log-level", "warning"]  # fmt: skip


@contextlib.contextmanager
def model_service(model_dir: Path, env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    """A canary model-service on a free port; yields its port and its pid once it is ready."""
    port = free_port()
    server = start(server_command(port, model_dir), env=env, cwd=ROOT, output=None)
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, proc=server, interval=0.01)
        except NotReady as exc:
            raise BenchError(f"the model-service did not start: {exc}") from None
        yield port, server.pid
    finally:
        stop(server)


def bench_service(
    args: argparse.Namespace, judge: Judge, reviews: list[str], restaurant: str, folder: Path
) -> None:
    """Start, memory, /predict against /healthz, and the batch path of one model-service."""
    env = {"MODEL_SERVICE_FEEDBACK_SECRET": FEEDBACK_SECRET}
    started = time.perf_counter()
    with model_service(args.model_dir, env) as (port, pid):
        ready = time.perf_counter() - started
        rss = rss_bytes(pid) / 2**20
        print(f"\nStart to ready: {ready:.2f} s {judge('start-seconds', ready, f'{ready:.2f} s')}")
        print(f"Resident memory after start: {rss:.0f} MB {judge('rss-mb', rss, f'{rss:.0f} MB')}")

        predict = json.dumps({"review": REVIEW, "restaurantName": restaurant})
        load(port, "/predict", 1, args.connections, body=predict)  # warm-up
        print(
            f"\nOne uvicorn worker, wrk -c{args.connections}, {args.rounds} alternating rounds of "
            f"{args.seconds} s"
        )
        rounds: dict[str, list[wrk.Figures]] = {"GET /healthz": [], "POST /predict": []}
        for _ in range(args.rounds):
            rounds["GET /healthz"].append(load(port, "/healthz", args.seconds, args.connections))
            rounds["POST /predict"].append(
                load(port, "/predict", args.seconds, args.connections, body=predict)
            )
        for name, figures in rounds.items():
            print_row(name, figures)
        shares = [
            p.rate / h.rate
            for h, p in zip(rounds["GET /healthz"], rounds["POST /predict"], strict=True)
        ]
        share = statistics.median(shares)
        print(
            f"  /predict reaches {share:.2f}x /healthz "
            f"{judge('predict-vs-healthz', share, f'{share:.2f}x')}; rounds: "
            + ", ".join(f"{x:.2f}x" for x in shares)
        )

        items = [{"review": r, "restaurantName": restaurant} for r in reviews[:BATCH_SIZE]]
        batch = folder / "batch.json"
        batch.write_text(json.dumps({"reviews": items}) + "\n")
        batches = [
            load(port, "/predict/batch", args.seconds, 1, bodies=batch) for _ in range(args.rounds)
        ]
        per_second = statistics.median(f.rate for f in batches) * BATCH_SIZE
        p50 = statistics.median(f.p50_ms for f in batches)
        print(
            f"\nPOST /predict/batch, {BATCH_SIZE:,} reviews a request, one connection: "
            f"{per_second:,.0f} reviews/s, p50 {p50:.1f} ms a batch "
            + judge("batch-reviews", per_second, f"{per_second:,.0f} reviews/s")
        )
        print(f"Resident memory after the load: {rss_bytes(pid) / 2**20:.0f} MB")


def bench_feedback(args: argparse.Namespace, judge: Judge, restaurant: str, folder: Path) -> None:
    """POST /model-accuracy, each a new predictionId, with each feedback store against memory."""
    with contextlib.ExitStack() as stack:
        stores = {"memory": "memory", "sqlite": f"sqlite://{folder / 'feedback.sqlite3'}"}
        redis_server = shutil.which("redis-server")
        if redis_server:
            redis_port = free_port()
            redis = start(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"],
            )  # fmt: skip
            stack.callback(stop, redis)
            stores["redis"] = f"redis://127.0.0.1:{redis_port}/0"
        else:
            print("\n(redis-server is not installed: the Redis store is not measured)")
        ports = {}
        for name, url in stores.items():
            env = {"MODEL_SERVICE_FEEDBACK_SECRET": FEEDBACK_SECRET,
                   "MODEL_SERVICE_FEEDBACK_STORE": url}  # fmt: skip
            ports[name] = stack.enter_context(model_service(args.model_dir, env))[0]
        print(
            f"\nPOST /model-accuracy, each feedback a new predictionId, wrk -c{args.connections}, "
            f"{args.rounds} alternating rounds of {args.seconds} s"
        )
        for port in ports.values():
            load(port, "/model-accuracy", 1, args.connections,
                 bodies=feedback_bodies(folder, restaurant, 1))  # fmt: skip
        rounds: dict[str, list[wrk.Figures]] = {name: [] for name in stores}
        for _ in range(args.rounds):
            for name, port in ports.items():
                bodies = feedback_bodies(folder, restaurant, args.seconds)
                run = load(port, "/model-accuracy", args.seconds, args.connections,
                           bodies=bodies)  # fmt: skip
                bodies.unlink()
                rounds[name].append(run)
    for name, figures in rounds.items():
        if name == "memory":
            print_row(name, figures)
            continue
        ratios = [s.rate / m.rate for s, m in zip(figures, rounds["memory"], strict=True)]
        ratio = statistics.median(ratios)
        print_row(
            name,
            figures,
            f"  {ratio:.2f}x memory "
            + judge("feedback-vs-memory", ratio, f"({name}) {ratio:.2f}x")
            + "; rounds: "
            + ", ".join(f"{x:.2f}x" for x in ratios),
        )


def print_row(name: str, rounds: list[wrk.Figures], after: str = "") -> None:
    """The median round's requests a second and latencies."""
    rate = statistics.median(f.rate for f in rounds)
    p50 = statistics.median(f.p50_ms for f in rounds)
    p99 = statistics.median(f.p99_ms for f in rounds)
    print(f"  {name:<14} {rate:>8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms{after}")


parse_target = target_type(TARGETS)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m restaurant_sentiment.tools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--seconds", type=int, default=3, help="per wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--connections", type=int, default=CONNECTIONS, help=f"wrk -c (default {CONNECTIONS})"
    )
    parser.add_argument(
        "--target",
        type=parse_target,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one target, e.g. --target feedback-vs-memory=0.9",
    )
    args = parser.parse_args(argv)
    if min(args.seconds, args.rounds, args.connections) < 1:
        parser.error("--seconds (whole seconds, as wrk takes them), --rounds and --connections "
                     "must be >= 1")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    judge = Judge({name: default for name, (default, _) in TARGETS.items()} | dict(args.target))
    try:
        wrk.wrk_binary()
    except wrk.WrkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reviews = load_corpus(CORPUS).reviews
    restaurant = load_values(CHART_VALUES).restaurant_names[0]

    print("Single-review scoring (per review, same model, same process)")
    print(f"  {'version':<8} {'sklearn pipeline':>17} {'serving path':>13} {'speed-up':>9}")
    for version, slow, fast, ratio in bench_scoring(args.model_dir, reviews):
        target = judge("scoring-speedup", ratio, f"({version}) {ratio:.1f}x")
        print(f"  {version:<8} {slow:>14.1f} µs {fast:>10.1f} µs {ratio:>8.1f}x {target}")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        try:
            bench_service(args, judge, reviews, restaurant, Path(folder))
            bench_feedback(args, judge, restaurant, Path(folder))
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if judge.missed:
        print("\nMissed targets: " + "; ".join(judge.missed))
        return 1
    print("\nAll targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
