"""Micro-batching: many small concurrent requests, few model calls.

A model scores 50 products in about the time it takes to score one (the cost
is per call: featurizing, building frames, a matrix product), so requests that
arrive within a few milliseconds of each other are predicted together in one
`Categorizer.predict_table` call, run in a worker thread so the event loop
keeps accepting requests, and the rows are handed back to each request.

    >>> batcher = MicroBatcher(clf, max_wait_s=0.002, max_products=512)  # doctest: +SKIP
    >>> await batcher.start()                                            # doctest: +SKIP
    >>> rows = await batcher.predict([{"title": "oxford shirt"}], top_k=3)  # doctest: +SKIP
    >>> rows[0]["prediction"], rows[0]["top_k"][0]                      # doctest: +SKIP
    ('Apparel > Shirts', {'label': 'Apparel > Shirts', 'probability': 0.97})
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prodcat.categorizer import Categorizer


@dataclass
class _Job:
    products: list[dict[str, Any]]
    top_k: int
    target_precision: float | None
    future: asyncio.Future = field(repr=False)


def table_rows(table) -> list[dict[str, Any]]:
    """`predict_table` output as JSON-ready rows: prediction, confidence,
    needs_review and top_k [{label, probability}], best first; for a path
    model also confident_path and confident_level."""
    k = sum(1 for column in table.columns if column.startswith("label_"))
    predictions = table["prediction"].tolist()
    confidences = table["confidence"].tolist()
    reviews = table["needs_review"].tolist()
    labels = [table[f"label_{rank}"].tolist() for rank in range(1, k + 1)]
    probabilities = [table[f"prob_{rank}"].tolist() for rank in range(1, k + 1)]
    rows = [
        {
            "prediction": predictions[i],
            "confidence": confidences[i],
            "needs_review": bool(reviews[i]),
            "top_k": [{"label": labels[r][i], "probability": probabilities[r][i]} for r in range(k)],
        }
        for i in range(len(predictions))
    ]
    if "confident_path" in table.columns:  # a path model's (see Categorizer._confident_paths)
        for row, path, level in zip(rows, table["confident_path"].tolist(), table["confident_level"].tolist()):
            row["confident_path"], row["confident_level"] = path, int(level)
    return rows


class MicroBatcher:
    """Collects concurrent prediction requests and predicts them together.

    clf: a fitted Categorizer; its `predict_table` is the only model call.
    max_wait_s: how long the first request of a batch waits for company
        (0: no waiting; requests that queued during the previous call are
        still predicted together).
    max_products: a batch stops collecting once it holds this many products
        (a single larger request is never split).
    """

    def __init__(self, clf: Categorizer, *, max_wait_s: float = 0.002, max_products: int = 512):
        self.clf = clf
        self.max_wait_s = max_wait_s
        self.max_products = max_products
        self.model_calls = 0
        self._pending: list[_Job] = []
        self._pending_products = 0
        self._task: asyncio.Task | None = None
        # One thread: model calls run one after another, each using the
        # libraries' own parallelism, instead of competing for the same cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prodcat-predict")

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="prodcat-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(
        self, products: list[dict[str, Any]], top_k: int = 3, target_precision: float | None = None
    ) -> list[dict[str, Any]]:
        """The rows for these products, predicted in a batch with whatever else is waiting."""
        if self._task is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        job = _Job(products, top_k, target_precision, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._pending_products += len(products)
        self._arrived.set()
        if self._pending_products >= self.max_products:
            self._full.set()
        return await job.future

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if self.max_wait_s > 0 and self._pending_products < self.max_products:
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
                except asyncio.TimeoutError:
                    pass
            jobs = self._take_batch()
            try:
                await self._predict_batch(jobs)
            except Exception as exc:  # noqa: BLE001 - handed to the requests, which report it
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _take_batch(self) -> list[_Job]:
        jobs, count = [], 0
        while self._pending and (not jobs or count + len(self._pending[0].products) <= self.max_products):
            job = self._pending.pop(0)
            jobs.append(job)
            count += len(job.products)
        self._pending_products -= count
        if self._pending_products < self.max_products:
            self._full.clear()
        if not self._pending:
            self._arrived.clear()
        return jobs

    async def _predict_batch(self, jobs: list[_Job]) -> None:
        # Client disconnects cancel their futures; their products need no model time.
        jobs = [job for job in jobs if not job.future.done()]
        by_target: dict[float | None, list[_Job]] = {}
        for job in jobs:
            by_target.setdefault(job.target_precision, []).append(job)
        loop = asyncio.get_running_loop()
        for target, group in by_target.items():
            products = [p for job in group for p in job.products]
            # The top-k columns are a stable sort of the same probabilities, so a
            # request asking for fewer takes a prefix of the widest one.
            widest = max(job.top_k for job in group)
            try:
                rows = await loop.run_in_executor(self._executor, self._predict_rows, products, widest, target)
            except Exception as exc:  # noqa: BLE001 - each request reports it
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in group:
                mine = rows[start : start + len(job.products)]
                start += len(job.products)
                if job.top_k < widest:
                    mine = [{**row, "top_k": row["top_k"][: job.top_k]} for row in mine]
                if not job.future.done():
                    job.future.set_result(mine)

    def _predict_rows(self, products: list[dict[str, Any]], top_k: int, target: float | None) -> list[dict]:
        self.model_calls += 1
        # A photo comes as base64; a client's text that the model's image column also reads
        # (a text column named like it) must not open a file of the server's outside its image folder.
        return table_rows(self.clf.predict_table(products, top_k=top_k, target_precision=target, confine_photos=True))
