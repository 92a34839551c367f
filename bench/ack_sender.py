"""Send prepared HTTP requests all at once from their own process; print when each was sent
and how long its response took (JSON on stdout).

`python -m bench slack --defaults` uses it for the burst: the fake Slack and the bench's own
bookkeeping run on another process's event loop, so a late ack is the server's, not the
sender's. Requests are written on raw connections opened beforehand (no client library in
the timed path). time.monotonic() is CLOCK_MONOTONIC, comparable across processes.

stdin: {"port": N, "requests": ["<raw HTTP/1.1 request>", ...]}
stdout: [[sent_at, seconds], ...] in the same order
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def _one(port: int, raw: bytes, go: asyncio.Event) -> tuple[float, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await go.wait()
    sent = time.monotonic()
    writer.write(raw)
    status = await reader.readline()
    took = time.monotonic() - sent
    writer.close()
    if b" 200 " not in status:
        raise RuntimeError(f"ack was {status!r}")
    return sent, took


async def main() -> None:
    job = json.loads(sys.stdin.read())
    go = asyncio.Event()
    tasks = [asyncio.ensure_future(_one(job["port"], r.encode(), go)) for r in job["requests"]]
    await asyncio.sleep(0.5)  # every connection open before the first byte is sent
    go.set()
    print(json.dumps(await asyncio.gather(*tasks)))


if __name__ == "__main__":
    asyncio.run(main())
