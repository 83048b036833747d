"""What `darts-jax adapt-teacher` and `darts-jax adapt` do, as library functions.

`--data` decides the setting: a folder holding manipulation.npz (make-synthetic-faces --kind
manipulation) is the image setting, a SynthSpoof / ASVspoof 2019 LA folder the audio one. The teacher
is a workdir: an `adapt-teacher` run for images, a `darts-jax train` run for audio.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from darts_jax.data.synthfaces.manipulation import load_manipulation_corpus
from darts_jax.engine import parallel
from darts_jax.engine.checkpoint import load_weights
from darts_jax.engine.workdir import move_previous_run_aside
from darts_jax.spoofing.adaptation.audio import AudioSettingConfig, audio_setting
from darts_jax.spoofing.adaptation.images import ImageSettingConfig, image_setting, train_teacher
from darts_jax.spoofing.adaptation.protocol import score_model
from darts_jax.tasks.adapt.config import ZERO_SHOT, config_for
from darts_jax.tasks.adapt.step import compile_eval_forward
from darts_jax.tasks.adapt.task import adapt


def is_image_data(data) -> bool:
    return (Path(data) / "manipulation.npz").is_file() or str(data).endswith(".npz")


def run_adapt_teacher(data, workdir, *, epochs: int, seed: int, restart: bool = False) -> int:
    """Trains the image setting's face CNN on real vs A of the corpus in DATA (the teacher of `adapt`)."""
    if not is_image_data(data):
        raise ValueError(f"--data {data}: no manipulation.npz there; for audio the teacher is a `darts-jax train` run")
    config = dataclasses.replace(ImageSettingConfig(), teacher_epochs=epochs)
    train_teacher(load_manipulation_corpus(data), config, seed, workdir, restart=restart)
    print(f"teacher trained: {workdir} (real vs manipulation A); adapt it with darts-jax adapt --teacher {workdir}")
    return 0


def run_adapt(teacher, data, workdir, *, method: str, epochs: int, seed: int, lr: float, batch_size: int | None,
              target_per_class: int | None, target_attacks: tuple[str, ...] | None, restart: bool = False) -> int:
    """Adapts TEACHER to the target domain of DATA with METHOD (or scores it, for zero-shot); the source
    and target accuracy and EER go to WORKDIR/scores.json and the screen."""
    scores_path = Path(workdir) / "scores.json"
    if scores_path.exists() and not restart:
        raise FileExistsError(f"{scores_path} exists; pass --restart (the previous run and its scores move to "
                              f"previous-runs/) or give another --workdir")
    if is_image_data(data):
        image = ImageSettingConfig(**({"target_per_class": target_per_class} if target_per_class else {}))
        _, weights = load_weights(teacher)
        setting = image_setting(image, seed, workdir, corpus=load_manipulation_corpus(data), teacher=weights,
                                teacher_source=str(teacher))
        batch = batch_size or image.batch_size
    else:
        audio = AudioSettingConfig(teacher=str(teacher), data=str(data),
                                   **({"target_attacks": target_attacks} if target_attacks else {}))
        setting = audio_setting(audio, seed)
        batch = batch_size or audio.batch_size
    devices = parallel.local_devices(1)
    variables = setting.teacher
    if method == ZERO_SHOT and restart and Path(workdir).is_dir():
        move_previous_run_aside(Path(workdir))
    if method != ZERO_SHOT:
        config = config_for(method, batch_size=batch, lr=lr, box_axes=setting.box_axes, teacher=str(teacher),
                            epochs=epochs, seed=seed)
        variables = adapt(setting.backbone, setting.teacher, setting.target_train, None, config, workdir,
                          devices=devices, restart=restart).variables
    scores = score_model(setting, compile_eval_forward(setting.backbone, devices), variables, batch, devices)
    teacher_scores = score_model(setting, compile_eval_forward(setting.backbone, devices), setting.teacher, batch,
                                 devices)
    scores["forgetting"] = teacher_scores["source_acc"] - scores["source_acc"]
    Path(workdir).mkdir(parents=True, exist_ok=True)
    scores_path.write_text(json.dumps({"method": method, "setting": setting.name, **scores,
                                                           "teacher": teacher_scores}, indent=2) + "\n")
    print(f"{setting.name}, {method}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    return 0
