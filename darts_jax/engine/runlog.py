"""What a run writes as it goes: metrics as JSON lines and TensorBoard events, and a progress bar.

TensorBoard files come from tensorboardX, which needs no TensorFlow. Only process 0 writes.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import jax
from tqdm import tqdm


class RunLog:
    def __init__(self, workdir: str | Path, quiet: bool = False):
        self.workdir = Path(workdir)
        self.writes = jax.process_index() == 0
        self.quiet = quiet or not self.writes
        self._tensorboard = None
        if self.writes:
            self.workdir.mkdir(parents=True, exist_ok=True)

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
        with open(self.workdir / f"{stream}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"{stream}/{name}", value, step)

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
