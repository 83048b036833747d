"""SynthSpoof's spoofing attacks: vocoder-like resyntheses of the bona fide speech model.

Each attack turns an utterance plan and its target speaker into clean speech of the same length,
which then goes through the same recording chain as bona fide speech. Train/dev use A01-A06; eval
uses A07-A19, where A16 = A04 and A19 = A06 (as in ASVspoof 2019), A07, A09 and A11 vary the
algorithms of A03, A02 and A01, and A08, A10, A12-A15, A17 and A18 bring unseen ones.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.fft import next_fast_len

from darts_jax.data.protocols import SAME_AS_TRAIN_ATTACK
from darts_jax.data.synthspoof.spectral import (SAMPLE_RATE, cepstral_envelope, filter_time_varying,
                                                frame_times, griffin_lim, hann, istft, match_band_balance,
                                                mel_filterbank, moving_average, stft, windowed_frames)
from darts_jax.data.synthspoof.speech import (FILTER_BINS_HZ, FILTER_FFT, FILTER_FRAME, Plan, Speaker, draw_speaker,
                                              per_sample, render, retarget)

_HOP = FILTER_FRAME // 2
_ENVELOPE_FLOOR = 1e-7
_HNM_NOISE_FLOOR = 0.25
_FILTER_PADDING = 8192  # samples

Attack = Callable[[Plan, Speaker, np.random.Generator], np.ndarray]


# Building blocks -----------------------------------------------------------------------------------

def _log_envelope(wave: np.ndarray, order: int) -> np.ndarray:
    """(filter frames, FILTER_BINS) cepstrally smoothed natural-log magnitude at the filter frames."""
    frames = windowed_frames(wave, FILTER_FRAME, _HOP)
    magnitude = np.abs(np.fft.rfft(frames, n=FILTER_FFT, axis=-1))
    return cepstral_envelope(np.log(magnitude + _ENVELOPE_FLOOR), order)


def match_energy(wave: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`wave` with the short-time energy contour of `reference` (8 ms resolution)."""
    hop = 128
    def energy(x):
        return np.sum(windowed_frames(x, 2 * hop, hop) ** 2, axis=1) + 1e-12
    gain = np.sqrt(energy(reference) / energy(wave))
    return wave * np.interp(np.arange(wave.size), frame_times(wave.size, hop), gain)


def smooth_f0(plan: Plan, window_ms: float) -> np.ndarray:
    """Per-sample f0 after a moving average over `window_ms` (an acoustic model's oversmoothing)."""
    return per_sample(plan, moving_average(plan.f0_hz, max(1, int(window_ms / 5))))


def voiced_gate(plan: Plan) -> np.ndarray:
    """Per-sample 0..1 weight of voicing, as a vocoder's voiced/unvoiced decision would give it."""
    return np.clip((per_sample(plan, plan.voicing) - 0.08) / 0.15, 0.0, 1.0)


def pulse_train(f0_hz: np.ndarray) -> np.ndarray:
    """Unit-power dispersed pulses at the period marks of a per-sample f0 (no jitter, no shimmer).

    Each mark carries `_DISPERSED_PULSE`, not a bare impulse: as in LPC-10 a short all-pass chirp
    spreads the pulse's energy over 2.5 ms. Bare impulses would make the speech far peakier than
    a glottal source (a crest-factor and peak-shape cue), and a unipolar train has a DC component
    that an all-pole filter amplifies by 1/A(1); the chirp has zero mean.
    """
    cycles = np.cumsum(f0_hz) / SAMPLE_RATE
    marks = np.flatnonzero(np.diff(np.floor(cycles), prepend=0.0) > 0)
    impulses = np.zeros(f0_hz.size)
    impulses[marks] = np.sqrt(SAMPLE_RATE / f0_hz[marks])
    return np.convolve(impulses, _DISPERSED_PULSE)[: f0_hz.size]


def _dispersed_pulse(seconds: float) -> np.ndarray:
    """An all-pass chirp: flat magnitude but 0 Hz, group delay rising linearly to `seconds` at 8 kHz."""
    freqs = np.fft.rfftfreq(128, 1.0 / SAMPLE_RATE)
    # Phase -pi * seconds * f^2 / f_max integrates that group delay; seconds * f_max is a whole
    # number, so the Nyquist bin stays real.
    spectrum = np.exp(-1j * np.pi * seconds * freqs ** 2 / freqs[-1])
    spectrum[0] = 0.0
    pulse = np.fft.irfft(spectrum, n=128)
    pulse /= np.sqrt(np.sum(pulse ** 2))
    pulse.setflags(write=False)
    return pulse


_DISPERSED_PULSE = _dispersed_pulse(0.0025)


def lpc(power: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Levinson-Durbin on each frame's autocorrelation: (A polynomials (frames, order+1), error powers)."""
    corr = np.fft.irfft(power, axis=1)[:, : order + 1]
    corr[:, 0] = corr[:, 0] * (1.0 + 1e-6) + 1e-12
    poly = np.zeros((power.shape[0], order + 1))
    poly[:, 0] = 1.0
    error = corr[:, 0].copy()
    for i in range(1, order + 1):
        reflection = -(corr[:, i] + np.sum(poly[:, 1:i] * corr[:, i - 1:0:-1], axis=1)) / error
        poly[:, 1:i] = poly[:, 1:i] + reflection[:, None] * poly[:, i - 1:0:-1]
        poly[:, i] = reflection
        error = error * (1.0 - reflection ** 2)
    return poly, error


def lpc_vocoder(wave: np.ndarray, plan: Plan, order: int, noise_mix: float, f0_smoothing_ms: float,
                rng: np.random.Generator) -> np.ndarray:
    """Frame-wise LPC analysis, resynthesised from pulses (voiced) and white noise (unvoiced)."""
    frames = windowed_frames(wave, FILTER_FRAME, _HOP)
    poly, error = lpc(np.abs(np.fft.rfft(frames, n=FILTER_FFT, axis=1)) ** 2, order)
    gain = np.sqrt(np.maximum(error, 0.0) / np.sum(hann(FILTER_FRAME) ** 2))
    response = gain[:, None] / np.fft.rfft(poly, n=FILTER_FFT, axis=1)
    gate = voiced_gate(plan)
    noise = rng.standard_normal(wave.size)
    voiced = np.sqrt(1.0 - noise_mix) * pulse_train(smooth_f0(plan, f0_smoothing_ms)) + np.sqrt(noise_mix) * noise
    excitation = gate * voiced + (1.0 - gate) * noise
    return match_energy(filter_time_varying(excitation, response, FILTER_FRAME), wave)


def sum_of_harmonics(f0_hz: np.ndarray, max_hz: float, amplitude: Callable[[int], np.ndarray],
                     offsets: np.ndarray | None = None) -> np.ndarray:
    """Sum over k of amplitude(k) * sin(k * phase + offsets[k-1]) for the harmonics k * f0 below max_hz."""
    rotor = np.exp(2j * np.pi * np.cumsum(f0_hz) / SAMPLE_RATE)
    current, total = rotor.copy(), np.zeros(f0_hz.size)
    for k in range(1, int(max_hz / f0_hz.min()) + 1):
        shifted = current if offsets is None else current * np.exp(1j * offsets[k - 1])
        total += amplitude(k) * (k * f0_hz < max_hz) * shifted.imag
        current *= rotor
    return total


def harmonic_plus_noise(wave: np.ndarray, plan: Plan, f0_smoothing_ms: float, max_voiced_hz: float,
                        order: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonics of a smoothed f0 up to a maximum voiced frequency, envelope-shaped noise above it."""
    envelope = np.exp(_log_envelope(wave, order))
    f0 = smooth_f0(plan, f0_smoothing_ms)
    gate = voiced_gate(plan)
    centres = frame_times(wave.size, _HOP)
    samples = np.arange(wave.size)
    f0_frames = np.interp(centres, samples, f0)
    rows = np.arange(envelope.shape[0])

    def amplitude(k):
        at_frames = envelope[rows, np.minimum(np.round(k * f0_frames / FILTER_BINS_HZ[1]).astype(int),
                                              envelope.shape[1] - 1)]
        return np.interp(samples, centres, at_frames)

    offsets = rng.uniform(0, 2 * np.pi, int(max_voiced_hz / f0.min()) + 1)
    gate_frames = np.interp(centres, samples, gate)[:, None]
    # Below the maximum voiced frequency the noise drops to _HNM_NOISE_FLOOR, not to nothing: purely
    # harmonic voiced frames would be far less flat than breathy bona fide ones.
    noise_band = 1.0 - (1.0 - _HNM_NOISE_FLOOR) * gate_frames * (FILTER_BINS_HZ < max_voiced_hz)
    # Envelope to amplitude: a unit sinusoid peaks at sum(window)/2 = 128 in a 512-point Hann frame,
    # unit white noise has an rms of sqrt(sum(window**2)) ~ 14 per bin.
    harmonics = sum_of_harmonics(f0, max_voiced_hz, amplitude, offsets) / 128.0
    noise = filter_time_varying(rng.standard_normal(wave.size), envelope * noise_band / 14.0, FILTER_FRAME)
    return match_energy(gate * harmonics + noise, wave)


def mel_inversion(wave: np.ndarray, num_mels: int, max_hz: float, iterations: int,
                  rng: np.random.Generator) -> np.ndarray:
    """A band-limited mel power spectrogram turned back into a waveform (pseudo-inverse, Griffin-Lim)."""
    n_fft, hop = 512, 128
    basis = mel_filterbank(num_mels, n_fft, max_hz)
    mel = np.abs(stft(wave, n_fft, hop)) ** 2 @ basis.T
    power = np.maximum(mel @ _pseudo_inverse(num_mels, n_fft, max_hz).T, 0.0)
    return match_energy(griffin_lim(np.sqrt(power), hop, wave.size, iterations, rng), wave)


@functools.lru_cache(maxsize=4)
def _pseudo_inverse(num_mels: int, n_fft: int, max_hz: float) -> np.ndarray:
    return np.linalg.pinv(mel_filterbank(num_mels, n_fft, max_hz))


def phase_reconstruction(wave: np.ndarray, iterations: int, time_smoothing: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Griffin-Lim from the magnitude alone, oversmoothed in time as an acoustic model predicts it."""
    n_fft, hop = 512, 128
    magnitude = moving_average(np.abs(stft(wave, n_fft, hop)), time_smoothing, axis=0)
    return match_energy(griffin_lim(magnitude, hop, wave.size, iterations, rng), wave)


def convert_envelope(wave: np.ndarray, warp: float, order: int, frame_noise_db: float,
                     rng: np.random.Generator, keep_waveform: bool = False) -> np.ndarray:
    """Frame-level spectral conversion: the envelope warped in frequency plus per-frame conversion errors.

    With `keep_waveform` the change is applied as a zero-phase filter on the source waveform
    (direct waveform modification); otherwise the converted magnitude is paired with the source phase.
    """
    envelope = _log_envelope(wave, order)
    warped = np.stack([np.interp(FILTER_BINS_HZ / warp, FILTER_BINS_HZ, row) for row in envelope])
    # Errors smooth across frequency, independent from frame to frame.
    shapes = np.cos(np.outer(np.arange(1, 6), np.pi * FILTER_BINS_HZ / 8000.0))
    errors = rng.standard_normal((envelope.shape[0], 5)) @ shapes / np.sqrt(5)
    change = np.exp(warped - envelope + errors * frame_noise_db / 8.686)
    if keep_waveform:
        return match_energy(filter_time_varying(wave, change, FILTER_FRAME), wave)
    n_fft, hop = FILTER_FFT, _HOP
    spectrum = stft(wave, n_fft, hop)
    return match_energy(istft(spectrum * change[: spectrum.shape[0]], hop, wave.size), wave)


def oversmooth(wave: np.ndarray, window_ms: float) -> np.ndarray:
    """The spectral envelope averaged over `window_ms`, fine structure kept: an acoustic model's blur."""
    frames = max(1, int(round(window_ms * SAMPLE_RATE / 1000 / _HOP)))
    if frames == 1:
        return wave
    spectrum = stft(wave, FILTER_FFT, _HOP)
    log_magnitude = np.log(np.abs(spectrum) + _ENVELOPE_FLOOR)
    envelope = cepstral_envelope(log_magnitude, 30)
    change = np.exp(moving_average(envelope, frames, axis=0) - envelope)
    return match_energy(istft(spectrum * change, _HOP, wave.size), wave)


def mu_law(wave: np.ndarray, bits: int) -> np.ndarray:
    """Mu-law companding and quantisation, the output stage of autoregressive neural vocoders."""
    mu = 2.0 ** bits - 1.0
    peak = np.max(np.abs(wave)) + 1e-12
    x = wave / peak
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    quantised = np.round((companded + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0
    return np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu * peak


def sine_excitation(plan: Plan, speaker: Speaker, rng: np.random.Generator) -> np.ndarray:
    """Clean speech whose voiced source is a sum of sines of a jitter-free f0 (neural source-filter style).

    With the short-time energy of a bona fide rendering, as a trained acoustic model's output has it
    (the LPC vocoder's too): left to the sines' own voiced/unvoiced balance, its quiet stretches were
    louder, and the fraction of frames within 30 dB of the loudest alone gave 33.8 % EER on A08 (#17).
    """
    f0 = smooth_f0(plan, 10.0)
    source = sum_of_harmonics(f0, 7600.0, lambda k: k ** -0.7)
    flow = 0.5 + 0.5 * np.cos(2.0 * np.pi * np.cumsum(f0) / SAMPLE_RATE)
    sines = render(plan, speaker, rng, voiced_source=source * 0.5, flow=flow)
    return match_energy(sines, render(plan, speaker, rng))


def unit_concatenation(plan: Plan, speaker: Speaker, crossfade_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Syllable units drawn from two renditions with other pitch and level, joined with short crossfades."""
    renditions = []
    for _ in range(2):
        scale = 10.0 ** (rng.uniform(-2.0, 2.0) / 20.0)
        variant = dataclasses.replace(plan, f0_hz=plan.f0_hz * 2.0 ** (rng.uniform(-1.5, 1.5) / 12.0),
                                      voicing=plan.voicing * scale, aspiration=plan.aspiration * scale,
                                      frication=plan.frication * scale)
        renditions.append(render(variant, speaker, rng))
    choice = rng.integers(0, 2, plan.unit_starts.size)
    bounds = np.append(plan.unit_starts, plan.num_samples)
    second = np.repeat(choice, np.diff(bounds)).astype(float)
    second = moving_average(second, max(1, int(crossfade_ms * SAMPLE_RATE / 1000)))
    return (1.0 - second) * renditions[0] + second * renditions[1]


def converted_source(plan: Plan, speaker: Speaker, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A source speaker saying the same words with the target's pitch: (speech, formant warp to the target)."""
    other = draw_speaker(rng)
    source = dataclasses.replace(other, female=speaker.female, f0_hz=speaker.f0_hz, intonation=speaker.intonation)
    return render(retarget(plan, speaker, source), source, rng), speaker.tract_scale / source.tract_scale


# The attacks ---------------------------------------------------------------------------------------

def _griffin_lim_tts(iterations: int, smoothing: int, plan, speaker, rng):
    return phase_reconstruction(render(plan, speaker, rng), iterations, smoothing, rng)


def _lpc_tts(order: int, noise_mix: float, plan, speaker, rng):
    return lpc_vocoder(render(plan, speaker, rng), plan, order, noise_mix, 30.0, rng)


def _hnm_tts(f0_smoothing_ms: float, max_voiced_hz: float, order: int, plan, speaker, rng):
    return harmonic_plus_noise(render(plan, speaker, rng), plan, f0_smoothing_ms, max_voiced_hz, order, rng)


def _concatenation(crossfade_ms: float, plan, speaker, rng):
    return unit_concatenation(plan, speaker, crossfade_ms, rng)


def _voice_conversion(order: int, noise_db: float, keep_waveform: bool, plan, speaker, rng):
    wave, warp = converted_source(plan, speaker, rng)
    return convert_envelope(wave, warp, order, noise_db, rng, keep_waveform)


def _mel_tts(num_mels: int, max_hz: float, iterations: int, plan, speaker, rng):
    return mel_inversion(render(plan, speaker, rng), num_mels, max_hz, iterations, rng)


def _autoregressive(bits: int, plan, speaker, rng):
    return mu_law(render(plan, speaker, rng), bits)


def _hnm_autoregressive(plan, speaker, rng):
    return mu_law(_hnm_tts(30.0, 5000.0, 30, plan, speaker, rng), 10)


def _concatenation_converted(plan, speaker, rng):
    return convert_envelope(unit_concatenation(plan, speaker, 5.0, rng), 1.0, 30, 1.5, rng, keep_waveform=True)


def _converted_lpc(plan, speaker, rng):
    wave, warp = converted_source(plan, speaker, rng)
    return lpc_vocoder(convert_envelope(wave, warp, 30, 1.0, rng), plan, 20, 0.1, 20.0, rng)


def _converted_autoregressive(plan, speaker, rng):
    return mu_law(_voice_conversion(30, 1.0, False, plan, speaker, rng), 9)


def _cepstral_vocoder_conversion(plan, speaker, rng):
    wave, warp = converted_source(plan, speaker, rng)
    return lpc_vocoder(convert_envelope(wave, warp, 14, 1.0, rng), plan, 10, 0.2, 40.0, rng)


class System(NamedTuple):
    """A spoofing system: its algorithm and the timbre its acoustic model gives every output."""
    synthesize: Attack
    high_loss_db: float  # attenuation at 8 kHz, fading in from 3 kHz (band matching keeps its slope in each band)
    ripple_db: float  # standard deviation of the system's own spectral ripple (what band matching leaves)
    smoothing_ms: float  # time over which the acoustic model blurs the spectral envelope


SYSTEMS: dict[str, System] = {
    "A01": System(functools.partial(_griffin_lim_tts, 10, 3), 5.0, 2.25, 40.0),
    "A02": System(functools.partial(_lpc_tts, 18, 0.0), 4.0, 3.0, 30.0),
    "A03": System(functools.partial(_hnm_tts, 60.0, 4000.0, 30), 6.0, 1.5, 50.0),
    "A04": System(functools.partial(_concatenation, 2.0), 3.0, 3.0, 0.0),
    "A05": System(functools.partial(_voice_conversion, 24, 3.0, False), 4.0, 3.75, 15.0),
    "A06": System(functools.partial(_mel_tts, 80, 8000.0, 10), 5.0, 1.5, 40.0),
    "A07": System(functools.partial(_hnm_tts, 20.0, 5500.0, 40), 4.0, 2.25, 30.0),
    "A08": System(sine_excitation, 3.0, 1.5, 25.0),
    "A09": System(functools.partial(_lpc_tts, 12, 0.3), 5.0, 3.0, 40.0),
    "A10": System(functools.partial(_autoregressive, 8), 2.0, 2.25, 20.0),
    "A11": System(functools.partial(_griffin_lim_tts, 3, 1), 6.0, 3.0, 50.0),
    "A12": System(_hnm_autoregressive, 3.0, 1.5, 30.0),
    "A13": System(_concatenation_converted, 2.5, 1.5, 10.0),
    "A14": System(_converted_lpc, 4.0, 3.0, 20.0),
    "A15": System(_converted_autoregressive, 3.0, 2.25, 15.0),
    "A17": System(functools.partial(_voice_conversion, 30, 1.0, True), 1.0, 1.05, 0.0),
    "A18": System(_cepstral_vocoder_conversion, 3.0, 2.25, 20.0),
}
# As in ASVspoof 2019, two eval attacks are train systems again.
for _eval_attack, _train_attack in SAME_AS_TRAIN_ATTACK.items():
    SYSTEMS[_eval_attack] = SYSTEMS[_train_attack]


@functools.lru_cache(maxsize=None)
def system_colouring(attack: str) -> np.ndarray:
    """Gain in dB of an attack's timbre on FILTER_BINS_HZ (0 to 8 kHz), fixed per system."""
    system = SYSTEMS[attack]
    freqs = FILTER_BINS_HZ / FILTER_BINS_HZ[-1]
    shape_rng = np.random.default_rng([1234, int(SAME_AS_TRAIN_ATTACK.get(attack, attack)[1:])])
    # Ripples of 500-2700 Hz period: finer than speaker and room differences, like a vocoder's fingerprint.
    orders = np.arange(6, 33)
    ripple = shape_rng.standard_normal(orders.size) @ np.cos(np.pi * np.outer(orders, freqs))
    ripple *= np.sqrt(2.0 / orders.size)
    high_loss = np.clip((freqs - 0.375) / 0.625, 0.0, 1.0) * system.high_loss_db
    gain_db = system.ripple_db * ripple - high_loss
    gain_db.setflags(write=False)
    return gain_db


def spoof(attack: str, plan: Plan, speaker: Speaker, rng: np.random.Generator) -> np.ndarray:
    """Clean spoofed speech of `attack` for a plan spoken by (a conversion to) `speaker`.

    The output's energy in each band of `spectral.BALANCE_EDGES_HZ` is that of a bona fide rendering of
    the same plan: a trained system reproduces its target's long-term spectrum, and without this each
    algorithm's own brightness or band limit would betray it to a single band-energy number. What is
    left to detect is finer: the systems' spectral fingerprints, smoothing, phase and excitation.
    """
    if attack not in SYSTEMS:
        raise ValueError(f"attack: {attack!r} is not one of {', '.join(sorted(SYSTEMS))}")
    system = SYSTEMS[attack]
    wave = oversmooth(system.synthesize(plan, speaker, rng), system.smoothing_ms)
    # The zero-phase gains below ring before and after each sound; the padding takes the ringing that
    # a circular FFT filter would wrap from the end into the leading silence.
    length = next_fast_len(wave.size + _FILTER_PADDING, real=True)
    spectrum = np.fft.rfft(wave, n=length)
    freqs = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    # Each utterance varies the system's timbre a little, as outputs of one model do.
    gain_db = np.interp(freqs, FILTER_BINS_HZ, system_colouring(attack)) * rng.uniform(0.7, 1.3)
    spectrum = spectrum * 10.0 ** (gain_db / 20.0)
    reference = np.abs(np.fft.rfft(render(plan, speaker, rng), n=length)) ** 2
    return np.fft.irfft(match_band_balance(spectrum, reference, freqs), n=length)[: wave.size]
