import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from restaurant_sentiment.model_service.prediction_ids import PredictionIds
from tests.support import MODEL_DIR

ORIGINAL_PREDICT = {"restaurantName": "Gourmet Haven", "review": "This excellent."}


def samples(text: str) -> dict[tuple[str, str, str], float]:
    """(sample name, model_version, restaurant) -> value for the experiment metrics."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if "restaurant" in s.labels:
                out[(s.name, s.labels["model_version"], s.labels["restaurant"])] = s.value
    return out


async def test_original_request_shape_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.post("/predict", json=ORIGINAL_PREDICT)
    assert response.status_code == 200
    body = response.json()
    assert body["review"] == "This excellent."
    assert body["restaurantName"] == "Gourmet Haven"
    assert body["prediction"] in (0, 1)
    assert body["modelVersion"] == "stable"
    assert 0.5 <= body["confidence"] <= 1.0
    assert body["predictionId"]
    feedback = await client.post(
        "/model-accuracy",
        json={
            "restaurantName": "Gourmet Haven",
            "accurate": True,
            "prediction": body["prediction"],
        },
    )
    assert feedback.status_code == 200
    assert feedback.json() == {"model-accuracy": 1.0, "restaurantName": "Gourmet Haven"}


async def test_experiment_series_exist_at_zero_before_any_event(client: httpx.AsyncClient) -> None:
    values = samples((await client.get("/metrics")).text)
    names = ["predictions", "pos_predictions", "neg_predictions", "true_pos_predictions",
             "true_neg_predictions", "false_pos_predictions", "false_neg_predictions"]  # fmt: skip
    for restaurant in (
        "Gourmet Haven",
        "Sizzle & Spice",
        "Café Serendipity",
        "Sea Breeze Grill",
        "other",
    ):
        for name in names:
            assert values[(f"{name}_total", "stable", restaurant)] == 0.0
        assert values[("model_accuracy", "stable", restaurant)] == 0.0


async def test_metrics_after_a_known_sequence(client: httpx.AsyncClient) -> None:
    events = [  # review, restaurant, whether the user says the verdict was right
        ("Absolutely delicious, friendly staff, we will be back!", "Gourmet Haven", True),
        ("Cold food, rude waiter, never again.", "Gourmet Haven", False),
        ("Wonderful fish and a lovely view.", "Sea Breeze Grill", False),
        ("Terrible, dirty and overpriced.", "Unlisted Diner", True),
    ]
    expected: Counter[tuple[str, str]] = Counter()
    accuracy = None
    for review, restaurant, accurate in events:
        v = (
            await client.post("/predict", json={"review": review, "restaurantName": restaurant})
        ).json()
        label = restaurant if restaurant != "Unlisted Diner" else "other"
        kind = "pos" if v["prediction"] == 1 else "neg"
        outcome = ("true_" if accurate else "false_") + kind
        expected.update([("predictions", label), (f"{kind}_predictions", label),
                         (f"{outcome}_predictions", label)])  # fmt: skip
        response = await client.post(
            "/model-accuracy",
            json={"restaurantName": restaurant, "accurate": accurate,
                  "prediction": v["prediction"], "predictionId": v["predictionId"]},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        accuracy = response.json()["model-accuracy"]
    assert accuracy == 0.5
    m = samples((await client.get("/metrics")).text)
    for (name, label), count in expected.items():
        assert m[(f"{name}_total", "stable", label)] == count, (name, label)
    assert sum(v for k, v in m.items() if k[0] == "predictions_total") == 4
    assert ("predictions_total", "stable", "Unlisted Diner") not in m
    assert m[("model_accuracy", "stable", "Gourmet Haven")] == 0.5
    assert m[("model_accuracy", "stable", "Sea Breeze Grill")] == 0.0
    assert m[("model_accuracy", "stable", "other")] == 1.0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"restaurantName": "Gourmet Haven"}, ["body", "review"]),
        ({"review": "Nice"}, ["body", "restaurantName"]),
        ({"review": "", "restaurantName": "Gourmet Haven"}, ["body", "review"]),
        ({"review": " \n\t ", "restaurantName": "Gourmet Haven"}, ["body", "review"]),
        ({"review": "x" * 5001, "restaurantName": "Gourmet Haven"}, ["body", "review"]),
        ({"review": 42, "restaurantName": "Gourmet Haven"}, ["body", "review"]),
        ({"review": "Nice", "restaurantName": ["a"]}, ["body", "restaurantName"]),
    ],
)
async def test_bad_predict_bodies_get_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], where: list[str]
) -> None:
    response = await client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == where


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'"just a string"', b"\xff\xfe{}", b'{"review": "a",']
)
async def test_malformed_json_gets_422(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 2}, "prediction"),
        ({"restaurantName": "Gourmet Haven", "accurate": True, "prediction": "1"}, "prediction"),
        ({"restaurantName": "Gourmet Haven", "accurate": "yes", "prediction": 1}, "accurate"),
        ({"restaurantName": "Gourmet Haven", "prediction": 1}, "accurate"),
        ({"accurate": True, "prediction": 1}, "restaurantName"),
    ],
)
async def test_bad_feedback_gets_422(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/model-accuracy", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


async def test_bodies_over_64_kib_get_413(client: httpx.AsyncClient) -> None:
    big = {"review": "a" * 70_000, "restaurantName": "Gourmet Haven"}
    response = await client.post("/predict", json=big)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than 65536 bytes"}

    async def chunks():  # no content-length: the limit must still hold
        for _ in range(20):
            yield b"x" * 4096

    response = await client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_batch_scores_in_order_and_counts(client: httpx.AsyncClient) -> None:
    reviews = [
        {"review": "Fantastic food and great service.", "restaurantName": "Sizzle & Spice"},
        {"review": "Horrible, bland and cold.", "restaurantName": "Sizzle & Spice"},
    ] * 3
    response = await client.post("/predict/batch", json={"reviews": reviews})
    assert response.status_code == 200
    body = response.json()
    assert body["modelVersion"] == "stable"
    assert [p["prediction"] for p in body["predictions"]] == [1, 0] * 3
    assert len({p["predictionId"] for p in body["predictions"]}) == 6
    single = (await client.post("/predict", json=reviews[0])).json()
    assert single["confidence"] == pytest.approx(body["predictions"][0]["confidence"])
    m = samples((await client.get("/metrics")).text)
    # Batch calls are API traffic, counted apart from the diners' single predictions.
    assert m[("batch_predictions_total", "stable", "Sizzle & Spice")] == 6
    assert m[("predictions_total", "stable", "Sizzle & Spice")] == 1


async def test_feedback_on_a_batch_prediction_is_counted_apart(client: httpx.AsyncClient) -> None:
    reviews = [{"review": "Fantastic food.", "restaurantName": "Gourmet Haven"}]
    [made] = (await client.post("/predict/batch", json={"reviews": reviews})).json()["predictions"]
    payload = {"restaurantName": "Gourmet Haven", "accurate": False,
               "prediction": made["prediction"], "predictionId": made["predictionId"]}  # fmt: skip
    assert (await client.post("/model-accuracy", json=payload)).status_code == 200
    assert (await client.post("/model-accuracy", json=payload)).status_code == 409
    text = (await client.get("/metrics")).text
    assert 'batch_feedback_total{model_version="stable",outcome="incorrect"} 1.0' in text
    m = samples(text)
    diner = [
        k
        for k, v in m.items()
        if k[0].startswith(("true_", "false_")) and k[0].endswith("_total") and v
    ]
    assert diner == [], "batch feedback must not enter the per-user accuracy"


async def test_assignments_are_counted_by_split_and_forged_ones_are_not(
    client: httpx.AsyncClient,
) -> None:
    split = "stable=70,canary=30"
    for _ in range(3):
        response = await client.post(
            "/predict", json=ORIGINAL_PREDICT, headers={"x-model-assignment": split}
        )
        assert response.status_code == 200
    # What is not a split at all is no assignment (and adds no label value).
    for bad in ("stable=70,canary=30; DROP", "x" * 300, 'a="b"'):
        await client.post("/predict", json=ORIGINAL_PREDICT, headers={"x-model-assignment": bad})
    text = (await client.get("/metrics")).text
    assert f'model_assignments_total{{model_version="stable",split="{split}"}} 3.0' in text
    assert text.count("model_assignments_total{") == 1


@pytest.mark.parametrize("size", [0, 1001])
async def test_batch_size_is_bounded(client: httpx.AsyncClient, size: int) -> None:
    reviews = [{"review": "ok", "restaurantName": "x"}] * size
    response = await client.post("/predict/batch", json={"reviews": reviews})
    assert response.status_code == 422


async def predict_id(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.post("/predict", json=ORIGINAL_PREDICT)).json()  # type: ignore[no-any-return]


async def test_forged_and_tampered_ids_get_403(client: httpx.AsyncClient) -> None:
    body = await predict_id(client)
    forged = PredictionIds("another-secret-entirely", 3600).issue("stable", body["prediction"])
    tampered = body["predictionId"][:-2] + (
        "AA" if not body["predictionId"].endswith("AA") else "BB"
    )
    for token in (forged, tampered, "garbage"):
        response = await client.post(
            "/model-accuracy",
            json={
                "restaurantName": "Gourmet Haven",
                "accurate": True,
                "prediction": body["prediction"],
                "predictionId": token,
            },
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "predictionId is not valid"}


async def test_feedback_on_one_id_counts_once(client: httpx.AsyncClient) -> None:
    body = await predict_id(client)
    payload = {"restaurantName": "Gourmet Haven", "accurate": True,
               "prediction": body["prediction"], "predictionId": body["predictionId"]}  # fmt: skip
    assert (await client.post("/model-accuracy", json=payload)).status_code == 200
    again = await client.post("/model-accuracy", json=payload)
    assert again.status_code == 409
    assert again.json()["detail"] == "feedback for this predictionId was already recorded"
    m = samples((await client.get("/metrics")).text)
    outcome = "true_pos" if body["prediction"] == 1 else "true_neg"
    assert m[(f"{outcome}_predictions_total", "stable", "Gourmet Haven")] == 1


async def test_feedback_with_a_different_prediction_than_the_id_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = await predict_id(client)
    response = await client.post(
        "/model-accuracy",
        json={
            "restaurantName": "Gourmet Haven",
            "accurate": False,
            "prediction": 1 - body["prediction"],
            "predictionId": body["predictionId"],
        },
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "prediction does not match the predictionId"


async def test_feedback_is_attributed_to_the_version_that_predicted(
    make_client: Callable[..., Any],
) -> None:
    async with make_client(model_version="canary") as canary:
        body = await predict_id(canary)
        assert body["modelVersion"] == "canary"
    async with make_client(model_version="stable") as stable:
        response = await stable.post(
            "/model-accuracy",
            json={
                "restaurantName": "Gourmet Haven",
                "accurate": True,
                "prediction": body["prediction"],
                "predictionId": body["predictionId"],
            },
        )
        assert response.status_code == 200
        m = samples((await stable.get("/metrics")).text)
    outcome = "true_pos" if body["prediction"] == 1 else "true_neg"
    assert m[(f"{outcome}_predictions_total", "canary", "Gourmet Haven")] == 1
    assert m[(f"{outcome}_predictions_total", "stable", "Gourmet Haven")] == 0


async def test_ids_can_be_required(make_client: Callable[..., Any]) -> None:
    async with make_client(require_prediction_id=True) as client:
        response = await client.post(
            "/model-accuracy",
            json={"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 1},
        )
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["FeedbackIn"]
    # The document says the id is required, and the answer is the one for any missing field.
    assert "predictionId" in schema["required"]
    assert schema["properties"]["predictionId"]["type"] == "string"
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "predictionId"]
    assert response.json()["detail"][0]["type"] == "missing"


async def test_health_readiness_and_version(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    info = (await client.get("/version")).json()
    assert info["modelVersion"] == "stable"
    assert info["serviceVersion"] == "0.1.0"
    # The model's metadata.json, as training wrote it.
    written = json.loads((MODEL_DIR / "stable" / "metadata.json").read_text(encoding="utf-8"))
    assert info["model"] == written
    assert info["model"]["held_out"]["accuracy"] == written["held_out"]["accuracy"]


def test_version_serves_the_schema_training_writes() -> None:
    """/version's model is the very class training writes metadata.json with."""
    from restaurant_sentiment.model_service.metadata import METADATA_EXAMPLE, ModelMetadata
    from restaurant_sentiment.model_service.schemas import VersionInfo

    assert VersionInfo.model_fields["model"].annotation == ModelMetadata | None
    # The documented example is a valid metadata.json.
    assert ModelMetadata.model_validate(METADATA_EXAMPLE).model_dump(mode="json") == (
        METADATA_EXAMPLE
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", {**ORIGINAL_PREDICT, "restaurant_name": "x"}, "restaurant_name"),
        ("/predict/batch", {"reviews": [{**ORIGINAL_PREDICT, "stars": 5}]}, "stars"),
        ("/predict/batch", {"reviews": [ORIGINAL_PREDICT], "version": "canary"}, "version"),
        (
            "/model-accuracy",
            {"restaurantName": "Gourmet Haven", "accurate": True, "prediction": 1,
             "predictionID": "stable.1.x"},
            "predictionID",
        ),
    ],
)  # fmt: skip
async def test_properties_the_schema_does_not_define_get_422_naming_them(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    # The schemas say additionalProperties: false: a misspelt field is refused, not ignored.
    response = await client.post(path, json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == field
    assert error["type"] == "extra_forbidden"


async def test_a_prediction_written_as_a_whole_float_is_the_integer(
    client: httpx.AsyncClient,
) -> None:
    # JSON Schema's integer includes 1.0; a string or a fraction is still refused.
    body = await predict_id(client)
    response = await client.post(
        "/model-accuracy",
        content=(
            '{"restaurantName": "Gourmet Haven", "accurate": true, '
            f'"prediction": {body["prediction"]}.0, "predictionId": "{body["predictionId"]}"}}'
        ),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    for prediction in ("1.5", '"1"', "true"):
        response = await client.post(
            "/model-accuracy",
            content=f'{{"restaurantName": "x", "accurate": true, "prediction": {prediction}}}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "prediction"]


# Every character Python counts as whitespace, and the byte order mark (ECMA-262's \s has it).
WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()] + ["\ufeff"]


async def test_the_schema_pattern_and_the_server_agree_on_blank_text(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    review = spec["components"]["schemas"]["ReviewIn"]["properties"]["review"]
    pattern = re.compile(review["pattern"])
    for char in WHITESPACE:
        assert not pattern.search(char * 2), hex(ord(char))
        response = await client.post(
            "/predict", json={"review": char * 2, "restaurantName": "Gourmet Haven"}
        )
        assert response.status_code == 422, hex(ord(char))
    for text in ("a", "\u00e9", " x ", "\x1ex", "\u200b"):  # zero-width space is not whitespace
        assert pattern.search(text)
        response = await client.post("/predict", json={"review": text, "restaurantName": "G"})
        assert response.status_code == 200, repr(text)


async def test_swagger_ui_is_served_without_internet(client: httpx.AsyncClient) -> None:
    page = await client.get("/apidocs")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/swagger-ui-5.35.0/{asset}" in page.text
        response = await client.get(f"/static/swagger-ui-5.35.0/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000


async def test_every_schema_has_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ours = {"ReviewIn", "Prediction", "BatchIn", "BatchOut", "FeedbackIn", "FeedbackOut",
            "Health", "VersionInfo", "ModelMetadata", "ErrorOut", "FieldError",
            "ValidationErrorOut"}  # fmt: skip
    schemas = spec["components"]["schemas"]
    assert ours <= set(schemas)
    for name in ours:
        assert schemas[name].get("examples"), name
