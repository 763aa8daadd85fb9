"""An httpx transport on aiohttp's connection pool, for the calls on every diner's request.

httpcore's pool (httpx's default transport) costs milliseconds of CPU per call once a few dozen
calls are in flight: it walks every queued request and connection on each one. aiohttp's pool
keeps a free-connection list and parses HTTP in C. The httpx client API in front stays, so the
client's timeouts, its errors and the fakes the tests put behind it (httpx.MockTransport) are
unchanged: this module only turns aiohttp's answers and errors into httpx's.
"""

from __future__ import annotations

import aiohttp
import httpx

# How long an idle keep-alive connection to the model-service (or its sidecar) is kept.
KEEPALIVE_SECONDS = 30.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session: one pool, keep-alive, no per-call setup.

    `connections` bounds the connections open at once; a call that waits for one longer than
    the pool timeout fails like any other connect timeout.
    """

    def __init__(self, connections: int) -> None:
        self.connector = aiohttp.TCPConnector(
            limit=connections,
            limit_per_host=connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            # The model-service address is fixed for the process's life; no TLS, no DNS churn.
            ttl_dns_cache=None,
            use_dns_cache=True,
        )
        self.session = aiohttp.ClientSession(
            connector=self.connector,
            # Bodies and headers pass through untouched, as with httpx's own transport.
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        """httpx's connect/read/pool timeouts as aiohttp's, built once per distinct set."""
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            connect, read, pool = key
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request; the whole (small) answer is read before returning."""
        try:
            async with self.session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=request.content or None,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout(request),
            ) as answer:
                body = await answer.read()
                headers = list(answer.raw_headers)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except TimeoutError as exc:
            # Waiting for a free connection of the pool.
            raise httpx.PoolTimeout(str(exc) or "no free connection", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(answer.status, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        await self.session.close()
