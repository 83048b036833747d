"""What a run writes as it goes: metrics as JSON lines and TensorBoard events, and a progress bar.

TensorBoard files come from tensorboardX, which needs no TensorFlow. Only process 0 writes.
Each JSON-lines stream holds one record per step, in step order: a run resumed from a checkpoint
behind what a killed run had logged replaces those later records instead of repeating them.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jax
from tqdm import tqdm

from darts_jax.engine import workdir as workdir_lib


class RunLog:
    def __init__(self, workdir: str | Path, quiet: bool = False):
        self.workdir = Path(workdir)
        self.writes = jax.process_index() == 0
        self.quiet = quiet or not self.writes
        self._tensorboard = None
        self._last_step: dict[str, int] = {}
        if self.writes:
            workdir_lib.prepare(self.workdir)

    @property
    def tensorboard(self):
        if self._tensorboard is None:
            from tensorboardX import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.workdir / "tensorboard"))
        return self._tensorboard

    def scalars(self, step: int, values: dict, stream: str = "metrics") -> None:
        """One JSON line in `<stream>.jsonl` and one TensorBoard scalar per finite numeric value."""
        if not self.writes:
            return
        record = {"step": int(step), **values}
        path = self.workdir / f"{stream}.jsonl"
        if stream not in self._last_step:
            existing = _records(path)
            if path.exists() and not path.read_text().endswith("\n"):  # a line cut off by a kill
                path.write_text("".join(json.dumps(r) + "\n" for r in existing))
            self._last_step[stream] = max((r["step"] for r in existing), default=-1)
        if record["step"] <= self._last_step[stream]:
            kept = [r for r in _records(path) if r["step"] < record["step"]]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self._last_step[stream] = record["step"]
        for name, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"{stream}/{name}", value, step)

    def records(self, stream: str = "metrics") -> list[dict]:
        """The complete records of `stream` written so far (by this run or the one it resumes), in order."""
        return _records(self.workdir / f"{stream}.jsonl") if self.writes else []

    def text(self, step: int, tag: str, text: str) -> None:
        if self.writes:
            self.tensorboard.add_text(tag, text, step)

    def say(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message, file=sys.stderr)

    def progress(self, total: int, initial: int, description: str):
        return tqdm(total=total, initial=initial, desc=description, disable=self.quiet, leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _records(path: Path) -> list[dict]:
    """The complete records of a stream; a line cut off by a kill is dropped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records
