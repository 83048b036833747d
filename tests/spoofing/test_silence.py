"""The silence audit: the silence-only baseline finds a planted silence shortcut, and finds nothing where
both classes have the same silences; the report section lists both ways for every attack."""
import numpy as np
import pytest
import soundfile as sf

from darts_jax.data.protocols import LA2019_PROTOCOL_FOLDER, LA2019_PROTOCOLS
from darts_jax.spoofing.silence import silence_durations, silence_only_baseline, silence_section

RATE = 16000


def _corpus(root, bona_lead_s, spoof_lead_s, count=12, seed=0):
    """A small LA folder whose utterances are a tone burst after `*_lead_s` of faint noise."""
    rng = np.random.default_rng(seed)
    (root / LA2019_PROTOCOL_FOLDER).mkdir(parents=True)
    for partition, prefix in (("train", "T"), ("eval", "E")):
        folder = root / f"ASVspoof2019_LA_{partition}" / "flac"
        folder.mkdir(parents=True)
        lines = []
        for i in range(count):
            label = i % 2
            lead = (bona_lead_s if label else spoof_lead_s) + rng.uniform(0, 0.05)
            burst = 0.4 * np.sin(2 * np.pi * rng.uniform(150, 400) * np.arange(int(0.6 * RATE)) / RATE)
            wave = np.concatenate([1e-4 * rng.standard_normal(int(lead * RATE)), burst,
                                   1e-4 * rng.standard_normal(int(0.2 * RATE))])
            utt = f"LA_{prefix}_{i:07d}"
            sf.write(folder / f"{utt}.flac", (wave * 32767).astype(np.int16), RATE, subtype="PCM_16")
            attack = "-" if label else ("A01" if partition == "train" else "A07")
            lines.append(f"LA_0001 {utt} - {attack} {'bonafide' if label else 'spoof'}")
        (root / LA2019_PROTOCOL_FOLDER / LA2019_PROTOCOLS[partition]).write_text("\n".join(lines) + "\n")
    return root


def test_silence_durations_measure_the_planted_silences(tmp_path):
    root = _corpus(tmp_path / "LA", bona_lead_s=0.8, spoof_lead_s=0.1)
    from darts_jax.data.protocols import load_partition

    utterances = load_partition(root, "train")
    durations = silence_durations(utterances)
    lead = durations[:, 0]
    labels = np.array([u.label for u in utterances])
    # 30 ms of padding is kept before the burst; frames are 20 ms.
    assert np.all(np.abs(lead[labels == 1] - 0.8) < 0.1) and np.all(np.abs(lead[labels == 0] - 0.1) < 0.1)
    assert np.all(np.abs(durations[:, 1] - 0.2) < 0.1)


@pytest.mark.parametrize("bona_lead, spoof_lead, shortcut", [(0.8, 0.1, True), (0.4, 0.4, False)])
def test_the_silence_only_baseline_finds_a_planted_shortcut_and_only_that(tmp_path, bona_lead, spoof_lead,
                                                                          shortcut):
    result = silence_only_baseline(_corpus(tmp_path / "LA", bona_lead, spoof_lead, count=24))
    if shortcut:
        assert result["eer_percent"] == 0.0
    else:
        assert result["eer_percent"] > 25.0  # 12 trials a class: chance, with a wide margin either side


def test_the_section_lists_both_ways_per_attack():
    with_silence = {"eer_percent": 10.0, "per_attack": {"A07": {"eer_percent": 12.0}}}
    without = {"eer_percent": 30.0, "per_attack": {"A07": {"eer_percent": 33.0}}}
    baseline = {"eer_percent": 15.0, "per_attack": {"A07": {"eer_percent": 14.0}}}
    lines = silence_section(with_silence, without, baseline)
    assert "| pooled | 10.00 | 30.00 | 15.00 |" in lines and "| A07 | 12.00 | 33.00 | 14.00 |" in lines
