"""FReTAL's claim (source-free adaptation forgets less than fine-tuning) over seeds, in the image setting
(face CNN, real vs manipulation A -> B) and the audio setting (a trained PC-DARTS network on SynthSpoof's
training attacks -> a held-out eval attack group). The report goes to OUT/<setting>/report.md.

    .venv/bin/python experiments/fretal_protocol.py --out runs/fretal --seeds 0 1 2 3 4
    .venv/bin/python experiments/fretal_protocol.py --out runs/fretal --settings audio --teacher runs/train --data LA
"""
import argparse
import dataclasses

from darts_jax.spoofing.adaptation.images import ImageSettingConfig, image_setting
from darts_jax.spoofing.adaptation.protocol import METHODS_COMPARED, run_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--strength-a", type=float, default=ImageSettingConfig.strength_a)
    parser.add_argument("--strength-b", type=float, default=ImageSettingConfig.strength_b)
    parser.add_argument("--settings", nargs="+", choices=("images", "audio"), default=["images"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS_COMPARED))
    parser.add_argument("--teacher", help="audio: a `darts-jax train` workdir (the teacher)")
    parser.add_argument("--data", help="audio: the SynthSpoof LA folder")
    parser.add_argument("--target-attacks", nargs="+", help="audio: the held-out eval attacks to adapt to "
                        "(default: A07 A08 A09)")
    args = parser.parse_args()
    if "images" in args.settings:
        config = ImageSettingConfig(strength_a=args.strength_a, strength_b=args.strength_b)
        run_protocol(lambda seed, workdir: image_setting(config, seed, workdir), args.seeds, f"{args.out}/images",
                     methods=args.methods, epochs=args.epochs, lr=args.lr,
                     record={"setting": dataclasses.asdict(config)})
    if "audio" in args.settings:
        from darts_jax.spoofing.adaptation.audio import AudioSettingConfig, audio_setting

        targets = {"target_attacks": tuple(args.target_attacks)} if args.target_attacks else {}
        audio = AudioSettingConfig(teacher=args.teacher, data=args.data, **targets)
        run_protocol(lambda seed, workdir: audio_setting(audio, seed), args.seeds, f"{args.out}/audio",
                     methods=args.methods, epochs=args.epochs, lr=args.lr, batch_size=audio.batch_size,
                     record={"setting": dataclasses.asdict(audio)})


if __name__ == "__main__":
    main()
