"""Bona fide speech for SynthSpoof: a source-filter model with per-speaker traits.

An utterance is planned as phrases of random syllables (vowels, nasals, approximants, fricatives,
stops, pauses) and turned into control tracks every 5 ms: f0 with declination and pitch accents,
source amplitudes, moving formants (F1-F3 follow the phones, F4-F7 the speaker) and a frication
band. Rendering drives a cascade of formant resonators with a glottal pulse train (jitter, shimmer,
breathy noise) and filters noise for the fricatives and bursts. The attacks in `synthetic_attacks`
reuse these tracks and pieces.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from darts_jax.data.synthspoof.spectral import (SAMPLE_RATE, all_pole_response, filter_time_varying, frame_times,
                                                moving_average)

CONTROL_HOP = 80  # 5 ms
FILTER_FRAME = 512  # 32 ms Hann frames at a 16 ms hop for the time-varying filters
FILTER_FFT = 1024
FILTER_BINS_HZ = np.fft.rfftfreq(FILTER_FFT, 1.0 / SAMPLE_RATE)

# Adult male formant targets F1-F3 (Hz); F4, F5 and all bandwidths are shared.
_VOWELS = np.array([(270, 2290, 3010), (390, 1990, 2550), (530, 1840, 2480), (660, 1720, 2410),
                    (730, 1090, 2440), (570, 840, 2410), (440, 1020, 2240), (300, 870, 2240),
                    (640, 1190, 2390), (490, 1350, 1690), (500, 1500, 2500)], float)
# F4-F7: at 16 kHz the poles above F5 keep the 5-8 kHz band at a natural level.
_UPPER_FORMANTS = (3500.0, 4500.0, 5500.0, 6600.0)
_BANDWIDTHS = np.array([60.0, 90.0, 130.0, 180.0, 260.0, 400.0, 900.0])
_NUM_FORMANTS = 7
_NASALS = np.array([(280, 900, 2200), (280, 1400, 2500), (280, 2000, 2600)], float)
_APPROXIMANTS = np.array([(360, 1000, 2700), (330, 1150, 1600), (300, 700, 2200), (280, 2200, 2900)], float)
# Fricatives and bursts: (centre Hz, bandwidth Hz, level).
_FRICATIVES = np.array([(6000, 2000, 0.5), (3000, 1500, 0.6), (5000, 6000, 0.18), (6500, 6000, 0.15)])
_BURSTS = np.array([(1000, 2000), (4500, 3000), (2500, 1500)], float)
_FRICATION_GAIN = 0.2
_RADIATION = 0.6


@dataclasses.dataclass(frozen=True)
class Speaker:
    female: bool
    f0_hz: float
    intonation: float  # scale of the pitch movements
    tract_scale: float  # formant frequency scale (vocal tract length)
    formant_skew: tuple[float, ...]  # per-formant deviations of this speaker
    bandwidth_scale: float
    jitter: float  # relative sd of the period, per period
    shimmer: float  # relative sd of the pulse amplitude, per period
    breathiness: float
    open_quotient: float
    tilt_hz: float  # corner of a one-pole low-pass: the voice's brightness
    tempo: float  # duration scale of every phone


def draw_speaker(rng: np.random.Generator) -> Speaker:
    female = bool(rng.random() < 0.5)
    return Speaker(
        female=female,
        f0_hz=float(rng.uniform(170, 250) if female else rng.uniform(85, 145)),
        intonation=float(rng.uniform(0.6, 1.4)),
        tract_scale=float(rng.uniform(1.08, 1.22) if female else rng.uniform(0.92, 1.04)),
        formant_skew=tuple(float(v) for v in rng.uniform(0.95, 1.05, _NUM_FORMANTS)),
        bandwidth_scale=float(rng.uniform(0.8, 1.3)),
        jitter=float(rng.uniform(0.004, 0.015)),
        shimmer=float(rng.uniform(0.02, 0.07)),
        breathiness=float(rng.uniform(0.02, 0.12) * (1.5 if female else 1.0)),
        open_quotient=float(rng.uniform(0.5, 0.75)),
        tilt_hz=float(rng.uniform(4000, 7000)),
        tempo=float(rng.uniform(0.85, 1.2)),
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """Control tracks of one utterance, one row per CONTROL_HOP samples."""
    num_samples: int
    f0_hz: np.ndarray
    voicing: np.ndarray  # glottal source amplitude
    aspiration: np.ndarray
    frication: np.ndarray
    formants_hz: np.ndarray  # (frames, 7)
    bandwidths_hz: np.ndarray  # (frames, 7)
    frication_hz: np.ndarray
    frication_bw_hz: np.ndarray
    unit_starts: np.ndarray  # sample index where each syllable (or pause) begins


@dataclasses.dataclass
class _Phone:
    seconds: float
    formants: np.ndarray | None = None  # F1-F3 targets; None follows the neighbours
    voicing: float = 0.0
    aspiration: float = 0.0
    frication: float = 0.0
    frication_band: tuple[float, float] = (4000.0, 4000.0)
    wide_f1: bool = False
    accent: float = 0.0  # pitch accent in semitones, on vowels


def _consonant(rng: np.random.Generator, tempo: float) -> list[_Phone]:
    kind = rng.choice(["nasal", "approximant", "fricative", "voiced_fricative", "stop", "voiced_stop", "h"],
                      p=[0.18, 0.17, 0.2, 0.07, 0.22, 0.1, 0.06])
    def seconds(low, high):
        return float(rng.uniform(low, high) * tempo)
    if kind == "nasal":
        return [_Phone(seconds(0.05, 0.08), _NASALS[rng.integers(len(_NASALS))], voicing=0.55, wide_f1=True)]
    if kind == "approximant":
        return [_Phone(seconds(0.04, 0.07), _APPROXIMANTS[rng.integers(len(_APPROXIMANTS))], voicing=0.8)]
    if kind in ("fricative", "voiced_fricative"):
        centre, width, level = _FRICATIVES[rng.integers(len(_FRICATIVES))]
        voiced = kind == "voiced_fricative"
        return [_Phone(seconds(0.06, 0.10) if voiced else seconds(0.08, 0.14), voicing=0.35 if voiced else 0.0,
                       frication=level * (0.6 if voiced else 1.0), frication_band=(centre, width))]
    if kind == "h":
        return [_Phone(seconds(0.05, 0.08), aspiration=0.25)]
    centre, width = _BURSTS[rng.integers(len(_BURSTS))]
    voiced = kind == "voiced_stop"
    phones = [_Phone(seconds(0.03, 0.06) if voiced else seconds(0.04, 0.08), voicing=0.12 if voiced else 0.0),
              _Phone(0.01, frication=0.9 if voiced else 1.3, frication_band=(centre, width))]
    if not voiced:
        phones.append(_Phone(seconds(0.02, 0.05), aspiration=0.2))
    return phones


def _syllable(rng: np.random.Generator, tempo: float) -> list[_Phone]:
    stressed = rng.random() < 0.45
    onset = rng.choice(3, p=[0.25, 0.55, 0.2])
    coda = rng.choice(3, p=[0.5, 0.4, 0.1])
    phones = [p for _ in range(onset) for p in _consonant(rng, tempo)]
    seconds = rng.uniform(0.12, 0.22) if stressed else rng.uniform(0.05, 0.10)
    level = float(rng.uniform(0.85, 1.0) if stressed else rng.uniform(0.5, 0.75))
    phones.append(_Phone(float(seconds * tempo), _VOWELS[rng.integers(len(_VOWELS))], voicing=level,
                         accent=float(rng.uniform(1.0, 4.0)) if stressed else 0.0))
    phones += [p for _ in range(coda) for p in _consonant(rng, tempo)]
    return phones


def plan_utterance(speaker: Speaker, num_samples: int, rng: np.random.Generator) -> Plan:
    """Random phrases of syllables, time-scaled to fill exactly `num_samples` samples."""
    units: list[list[_Phone]] = []
    phrase_of_unit: list[int] = []
    target_s, total_s, phrase = num_samples / SAMPLE_RATE, 0.0, 0
    while total_s < target_s:
        for _ in range(rng.integers(4, 12)):
            units.append(_syllable(rng, speaker.tempo))
            phrase_of_unit.append(phrase)
            total_s += sum(p.seconds for p in units[-1])
        if total_s < target_s * 0.85:
            units.append([_Phone(float(rng.uniform(0.12, 0.35)))])
            phrase_of_unit.append(phrase)
            total_s += units[-1][0].seconds
            phrase += 1
    phones = [p for unit in units for p in unit]
    ends = np.cumsum([p.seconds * target_s / total_s for p in phones]) * SAMPLE_RATE / CONTROL_HOP
    starts = np.concatenate([[0.0], ends[:-1]])
    frames = np.arange(num_samples // CONTROL_HOP + 2)
    which = np.minimum(np.searchsorted(ends, frames + 0.5), len(phones) - 1)  # phone of each frame
    unit_of_phone = np.repeat(np.arange(len(units)), [len(u) for u in units])
    first_phone = np.cumsum([0] + [len(u) for u in units[:-1]])

    def track(values):
        return moving_average(np.asarray(values, float)[which], 3)

    formants, bandwidths = _formant_tracks(phones, starts, ends, which, speaker, rng)
    semitones = _pitch_semitones(phones, starts, ends, np.array(phrase_of_unit)[unit_of_phone][which], rng)
    loudness = 10.0 ** ((np.linspace(0, -3, frames.size) + rng.normal(0, 1.0, len(units))[unit_of_phone][which]) / 20)
    band = np.array([p.frication_band for p in phones])
    return Plan(num_samples=num_samples, f0_hz=speaker.f0_hz * 2.0 ** (speaker.intonation * semitones / 12.0),
                voicing=track([p.voicing for p in phones]) * loudness,
                aspiration=track([p.aspiration for p in phones]) * loudness,
                frication=track([p.frication for p in phones]) * loudness,
                formants_hz=formants, bandwidths_hz=bandwidths, frication_hz=track(band[:, 0]),
                frication_bw_hz=track(band[:, 1]), unit_starts=np.round(starts[first_phone] * CONTROL_HOP).astype(int))


def _formant_tracks(phones: list[_Phone], starts: np.ndarray, ends: np.ndarray, which: np.ndarray,
                    speaker: Speaker, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 7) formant and bandwidth tracks: targets hold over the middle of each phone that has them."""
    frames = np.arange(which.size)
    anchor_frames, anchor_values = [], []
    for phone, start, end in zip(phones, starts, ends):
        if phone.formants is not None:
            anchor_frames += [start + 0.3 * (end - start), start + 0.7 * (end - start)]
            anchor_values += [phone.formants, phone.formants]
    anchor_values = np.array(anchor_values)
    lower = np.stack([np.interp(frames, anchor_frames, anchor_values[:, k]) for k in range(3)], axis=1)
    upper = np.broadcast_to(np.array(_UPPER_FORMANTS), (frames.size, len(_UPPER_FORMANTS)))
    formants = np.concatenate([lower, upper], axis=1) * speaker.tract_scale * np.array(speaker.formant_skew)
    formants = np.minimum(moving_average(formants * rng.uniform(0.97, 1.03, _NUM_FORMANTS), 5), 7000.0)
    bandwidths = np.broadcast_to(_BANDWIDTHS * speaker.bandwidth_scale, (frames.size, _NUM_FORMANTS)).copy()
    bandwidths[:, 0] *= 1.0 + 1.5 * moving_average(np.array([p.wide_f1 for p in phones], float)[which], 3)
    return formants, bandwidths


def _pitch_semitones(phones: list[_Phone], starts: np.ndarray, ends: np.ndarray, phrase_of_frame: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Pitch relative to the speaker's in semitones: declination per phrase, accents, a slow wander."""
    frames = np.arange(phrase_of_frame.size)
    semitones = np.zeros(frames.size)
    for phrase in np.unique(phrase_of_frame):
        in_phrase = np.flatnonzero(phrase_of_frame == phrase)
        semitones[in_phrase] = np.linspace(1.5, -2.5, in_phrase.size)
    for phone, start, end in zip(phones, starts, ends):
        if phone.accent:
            semitones += phone.accent * np.exp(-0.5 * ((frames - (start + end) / 2) / 12.0) ** 2)
    frame_s = CONTROL_HOP / SAMPLE_RATE
    for wander_hz in rng.uniform(0.3, 1.2, 3):
        semitones += 0.4 * np.sin(2 * np.pi * wander_hz * frames * frame_s + rng.uniform(0, 2 * np.pi))
    return semitones


def per_sample(plan: Plan, track: np.ndarray) -> np.ndarray:
    """A control track interpolated to every sample."""
    return np.interp(np.arange(plan.num_samples), np.arange(track.shape[0]) * CONTROL_HOP, track)


def at_filter_frames(plan: Plan, track: np.ndarray) -> np.ndarray:
    """A control track (frames, ...) sampled at the centres of the time-varying filter frames."""
    centres = frame_times(plan.num_samples, FILTER_FRAME // 2) / CONTROL_HOP
    index = np.minimum(np.round(centres).astype(int), track.shape[0] - 1)
    return track[index]


def glottal_pulses(f0_hz: np.ndarray, speaker: Speaker, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(flow derivative, flow) of a Rosenberg-style pulse train following a per-sample f0.

    Each period draws its own length (jitter) and amplitude (shimmer).
    """
    count = f0_hz.size
    most = int(count * f0_hz.max() / SAMPLE_RATE / 0.9) + 4
    jitter = rng.standard_normal(most) * speaker.jitter
    shimmer = rng.standard_normal(most) * speaker.shimmer
    # The first period starts before sample 0 so that utterances do not all begin on a pulse.
    starts, periods, k = [], [], 0
    position = -float(rng.uniform(0, SAMPLE_RATE / f0_hz[0]))
    while position < count:
        period = SAMPLE_RATE / f0_hz[max(int(position), 0)] * (1.0 + jitter[k])
        starts.append(position)
        periods.append(period)
        position += period
        k += 1
    starts, periods = np.array(starts), np.array(periods)
    amplitude = 1.0 + shimmer[: starts.size]
    samples = np.arange(count)
    period_of = np.searchsorted(starts, samples, side="right") - 1
    phase = (samples - starts[period_of]) / periods[period_of]
    rise, fall = 0.62 * speaker.open_quotient, 0.38 * speaker.open_quotient
    opening = phase < rise
    closing = (phase >= rise) & (phase < rise + fall)
    flow = np.where(opening, 0.5 * (1 - np.cos(np.pi * phase / rise)), 0.0)
    flow = np.where(closing, np.cos(0.5 * np.pi * (phase - rise) / fall), flow)
    slope = np.where(opening, 0.5 * np.pi / rise * np.sin(np.pi * phase / rise), 0.0)
    slope = np.where(closing, -0.5 * np.pi / fall * np.sin(0.5 * np.pi * (phase - rise) / fall), slope)
    scale = amplitude[period_of] * 100.0 / periods[period_of]
    return slope * scale, flow * amplitude[period_of]


def tract_response(plan: Plan, speaker: Speaker) -> np.ndarray:
    """(filter frames, bins) complex response: formant cascade times the speaker's brightness low-pass."""
    cascade = all_pole_response(at_filter_frames(plan, plan.formants_hz),
                                at_filter_frames(plan, plan.bandwidths_hz), FILTER_FFT)
    pole = np.exp(-2 * np.pi * speaker.tilt_hz / SAMPLE_RATE)
    z1 = np.exp(-2j * np.pi * FILTER_BINS_HZ / SAMPLE_RATE)
    # A lip-radiation zero lifts the highs by about 6 dB per octave; the low-pass sets the brightness.
    return cascade * (1 - _RADIATION * z1) * (1 - pole) / (1 - pole * z1)


def frication_response(plan: Plan) -> np.ndarray:
    """(filter frames, bins) response of the frication band, normalised to unit power gain."""
    centre = at_filter_frames(plan, plan.frication_hz)[:, None]
    width = at_filter_frames(plan, plan.frication_bw_hz)[:, None]
    response = all_pole_response(centre, width, FILTER_FFT) * (FILTER_BINS_HZ / 8000.0) ** 0.5
    return response / np.sqrt(np.mean(np.abs(response) ** 2, axis=1, keepdims=True))


def render(plan: Plan, speaker: Speaker, rng: np.random.Generator, voiced_source: np.ndarray | None = None,
           flow: np.ndarray | None = None) -> np.ndarray:
    """Clean speech for a plan; `voiced_source` (with its `flow`) replaces the glottal pulse train."""
    if voiced_source is None:
        voiced_source, flow = glottal_pulses(per_sample(plan, plan.f0_hz), speaker, rng)
    voicing = per_sample(plan, plan.voicing)
    noise = rng.standard_normal((2, plan.num_samples))
    # Breath noise is louder while the glottis is open, which couples it to the pulses.
    breath = noise[0] * (per_sample(plan, plan.aspiration) + speaker.breathiness * voicing * (0.3 + flow))
    voiced = filter_time_varying(voiced_source * voicing + breath, tract_response(plan, speaker), FILTER_FRAME)
    frication = filter_time_varying(noise[1] * per_sample(plan, plan.frication), frication_response(plan),
                                    FILTER_FRAME)
    return voiced + _FRICATION_GAIN * frication


def retarget(plan: Plan, speaker: Speaker, other: Speaker) -> Plan:
    """The same words and timing spoken with `other`'s vocal tract (as a voice-conversion source)."""
    scale = ((other.tract_scale * np.array(other.formant_skew))
             / (speaker.tract_scale * np.array(speaker.formant_skew)))
    return dataclasses.replace(plan, formants_hz=plan.formants_hz * scale,
                               bandwidths_hz=plan.bandwidths_hz * other.bandwidth_scale / speaker.bandwidth_scale)
