"""`knowledge add` throughput with two concurrent writer processes vs one (nothing lost).

One writer adds the whole corpus; then, on a fresh store, two processes each add half of
it at the same time. Both runs end with a check that every chunk the reports counted is
stored under a committed generation and nothing else is (no loss, no orphans). Run for the
embedded store and, when the `chroma` CLI is installed, a `chroma run` server. EMBEDDINGS=
none: the store and the write protocol are what is measured, not the model.
"""

from __future__ import annotations

import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.corpus import synthesize

Figures = dict[str, Any]


def _kb(data: Path, port: int | None) -> Any:
    from knowledge.config import KnowledgeConfig
    from knowledge.index import KnowledgeBase

    return KnowledgeBase(
        KnowledgeConfig(
            data_dir=data,
            embeddings="none",
            chroma_host="127.0.0.1" if port else None,
            chroma_port=port or 8000,
        )
    )


def _warm(_: int) -> None:
    import knowledge.index  # noqa: F401

    time.sleep(0.5)  # so each worker takes one


def add_files(data: Path, port: int | None, files: list[Path]) -> int:
    """One writer process: add these files; returns the chunks its report counted."""
    report = _kb(data, port).add(files)
    assert not report.skipped, report.skipped[:3]
    return report.chunks


def check(data: Path, port: int | None) -> int:
    """Stored chunks == committed chunks, nothing pending; returns the committed total."""
    kb = _kb(data, port)
    state = kb._store.state()  # bench only: reads the store directly to count
    stored = Counter(
        (r["metadatas"]["doc"], r["metadatas"]["gen"])
        for r in kb._store.iter_chunks(state.collection, include=("metadatas",))
    )
    committed = Counter({(m["doc"], m["gen"]): int(m["chunks"]) for m in kb._store.manifest()})
    assert stored == committed, "orphaned or missing chunks"
    assert not kb._store.pending(), "intents left behind"
    return sum(committed.values())


def run_writers(data: Path, port: int | None, parts: list[list[Path]]) -> Figures:
    with multiprocessing.get_context("spawn").Pool(len(parts)) as pool:
        pool.map(_warm, range(len(parts)), chunksize=1)  # imports outside the timing
        start = time.perf_counter()
        reported = pool.starmap(add_files, [(data, port, part) for part in parts])
        seconds = time.perf_counter() - start
    stored = check(data, port)
    return {"seconds": seconds, "reported": sum(reported), "stored": stored}


@contextmanager
def chroma_server(path: Path) -> Iterator[int | None]:
    cli = Path(sys.executable).parent / "chroma"
    if not cli.exists():
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [str(cli), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("chroma run did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(quick: bool = False) -> None:
    copies = 1 if quick else 4
    rows = []
    with tempfile.TemporaryDirectory(prefix="avatarbot-writers-") as tmp_name:
        tmp = Path(tmp_name)
        files = synthesize(tmp / "corpus", copies)
        halves = [files[0::2], files[1::2]]
        print(f"[bench] {len(files)} files; embedded store …", flush=True)
        one = run_writers(tmp / "e1", None, [files])
        two = run_writers(tmp / "e2", None, halves)
        rows.append(("embedded", one, two))
        for run_dir in ("e1", "e2"):
            shutil.rmtree(tmp / run_dir, ignore_errors=True)
        for n, plan in ((1, [files]), (2, halves)):
            print(f"[bench] chroma run, {n} writer(s) …", flush=True)
            with chroma_server(tmp / f"server{n}") as port:
                if port is None:
                    break
                figures = run_writers(tmp / f"s{n}", port, plan)
            if n == 1:
                server_one = figures
            else:
                rows.append(("chroma run", server_one, figures))
    print("store | 1 writer chunks/s | 2 writers chunks/s | ratio | chunks reported = stored")
    for store, a, b in rows:
        ra, rb = a["stored"] / a["seconds"], b["stored"] / b["seconds"]
        same = a["reported"] == a["stored"] and b["reported"] == b["stored"]
        print(
            f"{store} | {ra:.0f} ({a['stored']} in {a['seconds']:.1f} s) | "
            f"{rb:.0f} ({b['stored']} in {b['seconds']:.1f} s) | {rb / ra:.2f}x | "
            f"{'yes' if same else 'NO'}"
        )
