"""The least an ASGI app can do under uvicorn: the ceiling the model-service is compared with.

It reads the request body and answers a fixed JSON document, with the same uvicorn settings as
`model-service` (one worker, uvicorn's default loop and HTTP parser, no access log).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from starlette.types import Receive, Scope, Send

BODY = b'{"prediction":1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Drain the body, answer 200 with BODY."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restaurant_sentiment.tools.bench.bare")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
