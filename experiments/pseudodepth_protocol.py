"""The pseudo-depth protocol over seeds (spec related_systems §4.5): four methods on one backbone.

For each seed: stage 1 twice (GAN and L1-only), then stage 2 four ways (scratch, aux, reuse of the GAN
generator, reuse of the L1-only one), each scored at its dev EER threshold. Prints the GAN sanity
figures, the table (mean ± std over seeds) and the paired cross-domain HTER differences against scratch.

    python experiments/pseudodepth_protocol.py --out runs/pseudodepth --seeds 0 1 2 3 4
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from darts_jax.data.synthfaces.presentation import PresentationCorpusConfig, load_presentation_corpus, \
    make_presentation_corpus
from darts_jax.engine.config import with_fields
from darts_jax.spoofing.pad_report import depth_separation, dev_eer_metrics, evaluate_depth_run, format_pad_table
from darts_jax.tasks.pseudodepth.pretrain import PretrainConfig, pretrain
from darts_jax.tasks.pseudodepth.train import DepthTrainConfig, train

METHODS = {"scratch": {"method": "scratch"}, "aux": {"method": "aux"},
           "gan-reuse": {"method": "reuse", "stage1": "gan"}, "l1-reuse": {"method": "reuse", "stage1": "l1"}}


def run_seed(out: Path, splits: dict, seed: int, args) -> dict:
    results, times = {}, {}
    monitor = {name: splits[name] for name in ("dev", "test_intra", "test_cross")}
    for stage1, gan_loss in (("gan", "bce"), ("l1", None)):
        start = time.time()
        config = with_fields(PretrainConfig(gan_loss=gan_loss), epochs=args.pretrain_epochs, seed=seed,
                             lr=args.pretrain_lr, d_lr=args.pretrain_d_lr)
        pretrain(config, splits["train"], out / f"seed{seed}" / f"pretrain-{stage1}", monitor=monitor,
                 monitor_metrics=depth_separation, quiet=True)
        times[f"pretrain-{stage1}"] = time.time() - start
    for name, method in METHODS.items():
        start = time.time()
        extra = {"pretrained": str(out / f"seed{seed}" / f"pretrain-{method['stage1']}")} if "stage1" in method else {}
        config = with_fields(DepthTrainConfig(), epochs=args.train_epochs, seed=seed, method=method["method"], **extra)
        workdir = out / f"seed{seed}" / name
        train(config, splits["train"], workdir, dev_arrays=splits["dev"], dev_metrics=dev_eer_metrics, quiet=True)
        results[name] = evaluate_depth_run(workdir, splits)
        times[name] = time.time() - start
    sanity = [json.loads(line) for line in (out / f"seed{seed}" / "pretrain-gan" / "epochs.jsonl").open()]
    return {"results": results, "times": times, "gan_epochs": sanity}


def _mean_std(values, scale=100.0, digits=2):
    values = scale * np.asarray(values, float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/pseudodepth")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--train-epochs", type=int, default=6)
    parser.add_argument("--pretrain-lr", type=float, default=PretrainConfig.lr)
    parser.add_argument("--pretrain-d-lr", type=float, default=PretrainConfig.d_lr)
    args = parser.parse_args()
    out = Path(args.out)
    make_presentation_corpus(out / "faces", PresentationCorpusConfig(seed=args.corpus_seed))
    splits = load_presentation_corpus(out / "faces")
    per_seed = {}
    for seed in args.seeds:
        path = out / f"seed{seed}.json"
        if not path.exists():
            path.write_text(json.dumps(run_seed(out, splits, seed, args), indent=1))
        per_seed[seed] = json.loads(path.read_text())
        r = per_seed[seed]["results"]
        print(f"seed {seed}: cross HTER " + ", ".join(f"{m} {100 * r[m]['test_cross']['hter']:.2f}" for m in METHODS))
    print("\nGAN sanity (pretrain-gan, per epoch): d_accuracy | test_intra live L1 | "
          "depth AUC dev / test_intra / cross")
    for seed, record in per_seed.items():
        epochs = record["gan_epochs"]
        print(f"seed {seed}: " + " ".join(f"{e['d_accuracy']:.2f}" for e in epochs) + " | "
              + " ".join(f"{e['test_intra_live_l1']:.3f}" for e in epochs) + " | "
              + f"{epochs[-1]['dev_depth_auc']:.3f} / {epochs[-1]['test_intra_depth_auc']:.3f} / "
              + f"{epochs[-1]['test_cross_depth_auc']:.3f}")
    rows = {}
    for method in METHODS:
        runs = [per_seed[s]["results"][method] for s in per_seed]
        rows[method] = {"intra ACER %": _mean_std([r["test_intra"]["acer"] for r in runs]),
                        "cross HTER %": _mean_std([r["test_cross"]["hter"] for r in runs]),
                        "intra AUC": _mean_std([r["test_intra"]["auc"] for r in runs], 1, 4),
                        "cross AUC": _mean_std([r["test_cross"]["auc"] for r in runs], 1, 4),
                        "params": runs[0]["parameters"],
                        "s / run": f"{np.mean([per_seed[s]['times'][method] for s in per_seed]):.0f}"}
    print("\n" + format_pad_table(rows))
    print("\npretrain s / run: " + ", ".join(
        f"{k} {np.mean([per_seed[s]['times'][f'pretrain-{k}'] for s in per_seed]):.0f}" for k in ("gan", "l1")))
    for other in ("scratch", "aux", "l1-reuse"):
        diffs = [per_seed[s]["results"][other]["test_cross"]["hter"] - per_seed[s]["results"]["gan-reuse"]["test_cross"]
                 ["hter"] for s in per_seed]
        print(f"cross HTER {other} - gan-reuse per seed (%): " + " ".join(f"{100 * d:+.2f}" for d in diffs)
              + f"; positive in {sum(d > 0 for d in diffs)} of {len(diffs)}")


if __name__ == "__main__":
    main()
