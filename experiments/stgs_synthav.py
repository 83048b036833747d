"""STGS-BMNAS on SynthAV: audio-only, video-only, BM-NAS (softmax) and STGS (gumbel_st_mc, λ = 10, M = 15)
fusion models, each searched, retrained and scored alike, over several seeds (paired by seed).

    darts-jax make-synthetic-av --out runs/synthav --size medium
    darts-jax pretrain-backbones --data runs/synthav --epochs 4
    python experiments/stgs_synthav.py --data runs/synthav --workdir runs/stgs_synthav --task lipsync --seeds 0,1,2,3,4

`--task lipsync` searches and trains on RVRA against LS only (the planted pair: each stream alone is
real, so a single-modality model is at chance); `--task all` on every category. It prints the AUC per
category of every model and seed, the planted-pair verdict (the STGS search picks an audio and a video
tap; its LS AUC minus the best single-modality model's), and writes `summary.json` and a ROC plot.
A rerun resumes finished and interrupted runs.
"""
import argparse
import json
from pathlib import Path

from darts_jax.spoofing.av_protocol import MODELS, ProtocolConfig, planted_pair_summary, run_model
from darts_jax.spoofing.av_report import METRICS, format_table, plot_roc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a SynthAV folder with cached backbone features")
    parser.add_argument("--workdir", default="runs/stgs_synthav")
    parser.add_argument("--task", choices=("lipsync", "all"), default="lipsync")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--search-epochs", type=int, default=8)
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.2, help="of every fusion model, search and retraining")
    parser.add_argument("--weight-decay", type=float, default=3e-4, help="of every fusion model's weights")
    parser.add_argument("--select", choices=("best", "last"), default="best",
                        help="the retrained epoch scored: best dev AUC (default) or the last")
    args = parser.parse_args()
    config = ProtocolConfig(task=args.task, search_epochs=args.search_epochs, train_epochs=args.train_epochs,
                            channels=args.channels, dropout=args.dropout, weight_decay=args.weight_decay,
                            select=args.select)
    workdir = Path(args.workdir) / args.task
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.models.split(","):
            result = run_model(name, seed, args.data, workdir, config)
            results.append(result)
            selected = result["selected"]
            dev = f"; dev AUC {selected['dev']['dev_auc']:.3f}" if selected["dev"] else ""
            print(f"seed {seed} {name}: {result['genotype']}  fusion parameters {result['fusion_parameters']}  "
                  f"epoch {selected['epoch']} ({selected['checkpoint']}{dev})  "
                  + "  ".join(f"{c} {m['auc']:.3f}" for c, m in result["metrics"].items()), flush=True)
    for metric in METRICS:
        print(format_table({f"{r['model']} s{r['seed']}": r["metrics"] for r in results}, metric))
    summary = {"config": vars(args), "results": [{k: v for k, v in r.items() if k not in ("scores", "clip_ids")}
                                                for r in results]}
    if {"audio", "video", "stgs"} <= {r["model"] for r in results}:
        planted = planted_pair_summary(results)
        summary["planted_pair"] = planted
        for row in planted["rows"]:
            print(f"seed {row['seed']}: STGS fuses both streams: {row['both_streams']}; LS AUC STGS "
                  f"{row['fused_auc']:.3f}, audio {row['audio_auc']:.3f}, video {row['video_auc']:.3f}, "
                  f"STGS - best single {row['difference']:+.3f}")
        print(f"both streams in {planted['seeds_fusing_both']} of {len(planted['rows'])} seeds; STGS beats the best "
              f"single-modality model on LS in {planted['seeds_beating_single']} of {len(planted['rows'])} "
              f"(mean difference {planted['mean_difference']:+.3f}, smallest {planted['min_difference']:+.3f})")
    first_seed = results[0]["seed"]
    curves = {r["model"]: r["scores"] for r in results if r["seed"] == first_seed}
    plot = plot_roc(curves, results[0]["categories"], workdir / f"roc-LS-seed{first_seed}.png", category="LS")
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"summary in {workdir / 'summary.json'}, ROC curves in {plot}")


if __name__ == "__main__":
    main()
