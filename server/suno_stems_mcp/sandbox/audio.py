"""Deterministic little songs for the sandbox: a sung melody over bass, pads and drums.

Everything musical derives from a seed. The "mix" of a song is exactly the sample-wise sum of its
"vocals" and "instrumental" parts, so splitting a seeded song into stems yields its true stems.

At most LOOP_SECONDS of audio is ever rendered; longer songs repeat that loop. The tempo is chosen so
the loop holds a whole number of bars, so the repetition keeps time; a few milliseconds of fade at
each edge keep the seam from clicking.

MP3 files (what the real CDN serves) are the WAV's samples through LAME, when the optional `lameenc` is
installed: `mp3_bytes` encodes a part once and keeps the last few in memory.

Pure standard library apart from that. Synthesis runs on wavetables driven through C-level iterators (map,
itertools.accumulate) rather than per-sample Python loops, which keeps a 20 s part well under a second.
"""

from __future__ import annotations

import array
import colorsys
import functools
import itertools
import math
import operator
import random
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

SAMPLE_RATE: int = 22050
LOOP_SECONDS: float = 20.0
PARTS = ("mix", "vocals", "instrumental")

_LOOP_SAMPLES = round(LOOP_SECONDS * SAMPLE_RATE)
_PEAK = 0.45 * 32767  # per part, so vocals + instrumental always fits in int16
_FADE_SECONDS = 0.006
_WAV_HEADER_SIZE = 44
_MAX_WAV_DATA = 0xFFFFFFFF - (_WAV_HEADER_SIZE - 8)

_TABLE_SIZE = 2048
_TABLE_MASK = _TABLE_SIZE - 1
_SINE = [math.sin(2.0 * math.pi * k / _TABLE_SIZE) for k in range(_TABLE_SIZE)]
_PITCH_BLOCK = 32  # samples between updates of a sung note's pitch (vibrato, scoop)

# --- music theory ------------------------------------------------------------------------------

_TEMPOS = (84, 96, 108, 120)  # each fits a whole number of 4/4 bars into LOOP_SECONDS
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_PENTATONIC = (0, 2, 4, 7, 9)
# 5-limit just intonation: every triad below is then an exact 4:5:6 or 10:12:15 chord.
_JUST = {0: Fraction(1), 2: Fraction(9, 8), 4: Fraction(5, 4), 5: Fraction(4, 3),
         7: Fraction(3, 2), 9: Fraction(5, 3), 11: Fraction(15, 8)}
_CHORDS = {"I": (0, 4, 7), "IV": (5, 9, 12), "V": (7, 11, 14), "vi": (9, 12, 16)}
_PROGRESSIONS = (
    ("I", "V", "vi", "IV"),
    ("I", "vi", "IV", "V"),
    ("vi", "IV", "I", "V"),
    ("I", "IV", "vi", "V"),
    ("I", "IV", "I", "V"),
)

# Syllable rhythms in beats: the first bar of a phrase fills 4 beats, the second 3 (then a breath).
_FIRST_BAR_RHYTHMS = ((1, 1, 1, 1), (1, 1, 2), (2, 1, 1), (0.5, 0.5, 1, 2), (1.5, 0.5, 2),
                      (1, 0.5, 0.5, 2), (0.5, 0.5, 0.5, 0.5, 1, 1))
_SECOND_BAR_RHYTHMS = ((1, 2), (2, 1), (1, 1, 1), (0.5, 0.5, 2), (1.5, 1.5), (3,))
_MELODY_STEPS = (-3, -2, -1, -1, 0, 1, 1, 2, 3)
_MELODY_RANGE_HZ = (185.0, 800.0)

# Vowel formants: (centre Hz, half-bandwidth Hz, gain).
_VOWELS = {
    "ah": ((730, 90, 1.0), (1090, 110, 0.5), (2440, 170, 0.25)),
    "oo": ((300, 60, 1.0), (870, 80, 0.4), (2240, 150, 0.1)),
    "ee": ((270, 60, 1.0), (2290, 150, 0.5), (3010, 200, 0.35)),
    "oh": ((570, 80, 1.0), (840, 90, 0.6), (2410, 170, 0.15)),
    "eh": ((530, 80, 1.0), (1840, 120, 0.45), (2480, 170, 0.25)),
}
_VOWEL_NAMES = tuple(_VOWELS)
_VOICE_TOP_HZ = 3800.0  # highest harmonic a sung note gets

# Bass figures per bar: (start in eighths, length in eighths, ratio to the chord root).
_BASS_PATTERNS = (
    ((0, 3, 1), (3, 1, 1), (4, 3, 1), (7, 1, 2)),
    ((0, 2, 1), (2, 2, 1), (4, 2, Fraction(3, 2)), (6, 2, 2)),
    ((0, 4, 1), (4, 2, 1), (6, 2, Fraction(3, 2))),
    ((0, 1, 1), (1, 1, 1), (2, 1, 2), (3, 1, 1), (4, 1, 1), (5, 1, 1), (6, 1, 2), (7, 1, Fraction(3, 2))),
    ((0, 6, 1), (6, 1, Fraction(3, 2)), (7, 1, 2)),
)
_KICK_PATTERNS = ((0, 8), (0, 8, 10), (0, 6, 8), (0, 4, 8, 12), (0, 7, 10))  # sixteenth steps
_SNARE_STEPS = (4, 12)
_FILL_STEPS = {12: 0.5, 14: 0.7, 15: 0.9}  # snare roll closing the loop's last bar

_BASS_GAIN, _PAD_GAIN, _KICK_GAIN, _SNARE_GAIN, _HAT_GAIN = 0.5, 0.26, 0.65, 0.35, 0.12


@dataclass(frozen=True)
class Song:
    """A song to synthesise: `seed` picks key, tempo, melody and instrumentation; `duration` in seconds."""

    seed: int
    duration: float

    def __post_init__(self) -> None:
        _check_song(self)


@dataclass(frozen=True)
class _Note:
    start: int  # sample
    length: int  # samples
    freq: float
    vowel: str = ""
    gain: float = 1.0


@dataclass(frozen=True)
class _Arrangement:
    vocal_notes: tuple[_Note, ...]
    bass_notes: tuple[_Note, ...]
    pad_chords: tuple[tuple[int, int, tuple[float, ...]], ...]  # (start, length, chord tone Hz)
    drum_hits: tuple[tuple[str, int, float], ...]  # (kind, start, gain)
    voice_slope: float
    vibrato_hz: float
    vibrato_cents: float
    pad_brightness: float
    kick_drop_hz: float
    noise_seed: str


# --- public interface --------------------------------------------------------------------------


def render(song: Song, part: str) -> array.array[int]:
    """The 'h' samples of `part` for min(duration, LOOP_SECONDS); a fresh copy of a cached render."""
    _check_song(song)
    _check_part(part)
    return array.array("h", _rendered(song.seed, _rendered_samples(song), part))


def wav_size(song: Song) -> int:
    """Exact byte size of the song's WAV file (header and data), without rendering anything."""
    _check_song(song)
    return _WAV_HEADER_SIZE + _data_size(song)


def wav_bytes(song: Song, part: str) -> bytes:
    """The whole WAV file for the full duration. Builds it in memory: meant for short songs."""
    _check_song(song)
    _check_part(part)
    data_size = _data_size(song)
    loop = _loop_pcm(song, part)
    repeats, rest = divmod(data_size, len(loop)) if loop else (0, 0)
    return _wav_header(data_size) + loop * repeats + loop[:rest]


def iter_wav(song: Song, part: str, chunk_size: int = 65536, *, start: int = 0,
             stop: int | None = None) -> Iterator[bytes]:
    """Stream the bytes of wav_bytes(song, part)[start:stop] in chunks of at most `chunk_size` bytes.

    Memory stays bounded by the rendered loop whatever the duration. Rendering happens on the first
    chunk; argument errors are raised immediately.
    """
    _check_song(song)
    _check_part(part)
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
        raise TypeError(f"chunk_size must be an int, not {chunk_size!r}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    size = wav_size(song)
    stop = size if stop is None else min(stop, size)
    if not 0 <= start <= stop:
        raise ValueError(f"the byte range {start}..{stop} is not within the {size} bytes of the file")
    return _rechunk(_sliced(_wav_pieces(song, part, _data_size(song)), start, stop), chunk_size)


MP3_BIT_RATE = 64  # kbit/s: mono speech-band audio at 22.05 kHz


def mp3_available() -> bool:
    try:
        import lameenc  # noqa: F401
    except ImportError:
        return False
    return True


def mp3_bytes(song: Song, part: str) -> bytes:
    """The whole MP3 file of `part` for the full duration (MPEG-2 layer III, mono, MP3_BIT_RATE kbit/s)."""
    _check_song(song)
    _check_part(part)
    return _encoded_mp3(song.seed, float(song.duration), part)


@functools.lru_cache(maxsize=8)  # a 3-minute part is about 1.4 MB
def _encoded_mp3(seed: int, duration: float, part: str) -> bytes:
    import lameenc  # optional: the `mp3` extra

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_BIT_RATE)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(7)
    song = Song(seed=seed, duration=duration)
    encoded = bytearray()
    for chunk in _rechunk(_sliced(_wav_pieces(song, part, _data_size(song)), _WAV_HEADER_SIZE, wav_size(song)),
                          1 << 20):
        encoded += encoder.encode(chunk)
    encoded += encoder.flush()
    return bytes(encoded)


@functools.lru_cache(maxsize=64)
def cover_png(seed: int) -> bytes:
    """A 64x64 RGB PNG of a seeded two-colour gradient with rings, for use as cover art."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, not {seed!r}")
    return _png(64, 64, _cover_rows(seed, 64, 64))


# --- validation and sizes ----------------------------------------------------------------------


def _check_song(song: Song) -> None:
    if not isinstance(song.seed, int) or isinstance(song.seed, bool):
        raise TypeError(f"song seed must be an int, not {song.seed!r}")
    duration = song.duration
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise TypeError(f"song duration must be a number of seconds, not {duration!r}")
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"song duration must be a positive number of seconds, not {duration!r}")


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")


def _total_samples(song: Song) -> int:
    return round(song.duration * SAMPLE_RATE)


def _rendered_samples(song: Song) -> int:
    return min(_total_samples(song), _LOOP_SAMPLES)


def _data_size(song: Song) -> int:
    size = 2 * _total_samples(song)
    if size > _MAX_WAV_DATA:
        raise ValueError(f"a {song.duration} s song is too long for a WAV file")
    return size


# --- WAV ---------------------------------------------------------------------------------------


def _wav_header(data_size: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", _WAV_HEADER_SIZE - 8 + data_size, b"WAVE",
        b"fmt ", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16,
        b"data", data_size,
    )


def _loop_pcm(song: Song, part: str) -> bytes:
    """The rendered loop as little-endian 16-bit PCM."""
    samples = _rendered(song.seed, _rendered_samples(song), part)
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def _wav_pieces(song: Song, part: str, data_size: int) -> Iterator[bytes | memoryview]:
    yield _wav_header(data_size)
    loop = memoryview(_loop_pcm(song, part))
    remaining = data_size
    while remaining > 0:
        piece = loop[:remaining]
        yield piece
        remaining -= len(piece)


def _sliced(pieces: Iterable[bytes | memoryview], start: int, stop: int) -> Iterator[bytes | memoryview]:
    """The bytes [start, stop) of the stream of `pieces`, without copying the pieces it passes whole."""
    position = 0
    for piece in pieces:
        end = position + len(piece)
        if end > start:
            yield memoryview(piece)[max(0, start - position):stop - position]
        position = end
        if position >= stop:
            return


def _rechunk(pieces: Iterable[bytes | memoryview], chunk_size: int) -> Iterator[bytes]:
    pending = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        while view:
            if not pending and len(view) >= chunk_size:
                yield bytes(view[:chunk_size])
                view = view[chunk_size:]
                continue
            take = chunk_size - len(pending)
            pending += view[:take]
            view = view[take:]
            if len(pending) == chunk_size:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)


# --- rendering ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _rendered(seed: int, count: int, part: str) -> array.array[int]:
    """`count` samples (at most one loop) of a part. Shared by every duration of the same seed."""
    if part == "mix":
        vocals = _rendered(seed, count, "vocals")
        instrumental = _rendered(seed, count, "instrumental")
        return array.array("h", map(operator.add, vocals, instrumental))
    arrangement = _arrangement(seed)
    samples = _sing(arrangement, count) if part == "vocals" else _play_band(arrangement, count)
    _fade_edges(samples)
    return _to_int16(samples)


def _to_int16(samples: list[float]) -> array.array[int]:
    peak = max(max(samples, default=0.0), -min(samples, default=0.0))
    if peak == 0.0:
        return array.array("h", bytes(2 * len(samples)))
    return array.array("h", map(round, map(operator.mul, samples, itertools.repeat(_PEAK / peak))))


def _fade_edges(samples: list[float]) -> None:
    fade = min(round(_FADE_SECONDS * SAMPLE_RATE), len(samples) // 2)
    last = len(samples) - 1
    for i in range(fade):
        gain = (i + 0.5) / fade
        samples[i] *= gain
        samples[last - i] *= gain


def _sequence(events: Iterable[tuple[int, list[float]]], count: int) -> list[float]:
    """Lay (start, samples) events, in order of start, into a silent track `count` samples long."""
    track: list[float] = []
    for start, samples in events:
        if start >= count:
            break
        piece = samples[:count - start] if start + len(samples) > count else samples
        overlap = min(len(track) - start, len(piece))
        if overlap > 0:
            track[start:start + overlap] = map(operator.add, track[start:start + overlap], piece)
            piece = piece[overlap:]
        track.extend(itertools.repeat(0.0, start - len(track)))
        track.extend(piece)
    track.extend(itertools.repeat(0.0, count - len(track)))
    return track


def _add_into(track: list[float], start: int, samples: list[float], gain: float) -> None:
    end = min(len(track), start + len(samples))
    if start < end:
        track[start:end] = map(operator.add, track[start:end], map(operator.mul, samples, itertools.repeat(gain)))


def _oscillator(table: list[float], increments: Iterable[int]) -> Iterator[float]:
    """Wavetable samples for per-sample phase increments in 1/65536ths of a table entry."""
    phases = map(operator.rshift, itertools.accumulate(increments), itertools.repeat(16))
    return map(table.__getitem__, map(operator.and_, phases, itertools.repeat(_TABLE_MASK)))


def _increment(freq: float) -> int:
    return round(freq * _TABLE_SIZE / SAMPLE_RATE * 65536)


def _envelope(count: int, attack: int, release: int, decay_seconds: float, gain: float) -> list[float]:
    """Linear attack, exponential decay, linear release, `count` samples in all, peaking at `gain`."""
    attack = min(attack, count // 3)
    release = min(release, count - attack)
    hold = count - attack - release
    ratio = math.exp(-1.0 / (decay_seconds * SAMPLE_RATE))
    rise = [gain * i / attack for i in range(attack)]
    body = list(itertools.accumulate(itertools.repeat(ratio, hold - 1), operator.mul, initial=gain)) if hold else []
    level = body[-1] if body else gain
    fall = [level * (release - i) / release for i in range(release)]
    return rise + body + fall


def _steady_note(table: list[float], freq: float, count: int, attack: int, release: int,
                 decay_seconds: float, gain: float) -> list[float]:
    envelope = _envelope(count, attack, release, decay_seconds, gain)
    return list(map(operator.mul, _oscillator(table, itertools.repeat(_increment(freq), count)), envelope))


def _additive_table(partials: Iterable[tuple[int, float]], rms: float = 0.5) -> list[float]:
    """One period of a sum of sines: `partials` are (harmonic number, amplitude); scaled to `rms`."""
    half = _TABLE_SIZE // 2
    rising = [0.0] * (half + 1)  # a sum of sines is odd: the second half mirrors the first
    for harmonic, amplitude in partials:
        column = map(_SINE.__getitem__, map(operator.and_, range(0, harmonic * (half + 1), harmonic),
                                            itertools.repeat(_TABLE_MASK)))
        rising = list(map(operator.add, rising, map(operator.mul, column, itertools.repeat(amplitude))))
    power = 2.0 * math.fsum(map(operator.mul, rising, rising)) / _TABLE_SIZE
    scale = rms / math.sqrt(power) if power > 0 else 0.0
    rising = [value * scale for value in rising]
    return rising + [-value for value in reversed(rising[1:half])]


# --- vocals ------------------------------------------------------------------------------------


def _sing(song: _Arrangement, count: int) -> list[float]:
    return _sequence(((note.start, _sung_note(song, note, count - note.start))
                      for note in song.vocal_notes if note.start < count), count)


def _sung_note(song: _Arrangement, note: _Note, room: int) -> list[float]:
    count = min(note.length, room)
    table = _vocal_table(note.freq, note.vowel, song.voice_slope)
    increments = _sung_increments(note.freq, count, song.vibrato_hz, song.vibrato_cents)
    envelope = _envelope(count, round(0.035 * SAMPLE_RATE), round(0.07 * SAMPLE_RATE), 2.5, note.gain)
    return list(map(operator.mul, _oscillator(table, increments), envelope))


@functools.lru_cache(maxsize=64)
def _vocal_table(freq: float, vowel: str, slope: float) -> list[float]:
    """A glottal-like harmonic series (falling as 1/h^slope) shaped by the vowel's formants."""
    formants = _VOWELS[vowel]
    partials = []
    for harmonic in range(1, int(_VOICE_TOP_HZ // freq) + 1):
        f = harmonic * freq
        resonance = sum(gain / (1.0 + ((f - centre) / width) ** 2) for centre, width, gain in formants)
        partials.append((harmonic, (0.06 + resonance) / harmonic ** slope))
    return _additive_table(partials)


def _sung_increments(freq: float, count: int, vibrato_hz: float, vibrato_cents: float) -> Iterator[int]:
    """Per-sample phase increments: a small scoop up into the note, then vibrato fading in."""
    base = freq * _TABLE_SIZE / SAMPLE_RATE * 65536
    blocks = []
    for block in range(-(-count // _PITCH_BLOCK)):
        t = (block + 0.5) * _PITCH_BLOCK / SAMPLE_RATE
        depth = vibrato_cents * min(max((t - 0.15) / 0.25, 0.0), 1.0)
        cents = -35.0 * math.exp(-t / 0.03) + depth * math.sin(2.0 * math.pi * vibrato_hz * t)
        blocks.append(round(base * 2.0 ** (cents / 1200.0)))
    return itertools.chain.from_iterable(map(itertools.repeat, blocks, itertools.repeat(_PITCH_BLOCK)))


# --- instrumental ------------------------------------------------------------------------------


def _play_band(song: _Arrangement, count: int) -> list[float]:
    track = _play_pads(song, count)
    _play_bass(track, song)
    _play_drums(track, song)
    return track


def _play_pads(song: _Arrangement, count: int) -> list[float]:
    attack, release = round(0.12 * SAMPLE_RATE), round(0.2 * SAMPLE_RATE)

    @functools.cache
    def chord(tones: tuple[float, ...], length: int) -> list[float]:
        table, fundamental = _chord_table(tones, song.pad_brightness)
        return _steady_note(table, fundamental, length, attack, release, 6.0, _PAD_GAIN)

    return _sequence(((start, chord(tones, length)) for start, length, tones in song.pad_chords), count)


@functools.lru_cache(maxsize=32)
def _chord_table(tones: tuple[float, ...], brightness: float) -> tuple[list[float], float]:
    """A just-intonation triad is periodic: one table at the common fundamental plays all its notes."""
    ratios = [Fraction(tone / tones[0]).limit_denominator(64) for tone in tones]
    common = math.lcm(*(ratio.denominator for ratio in ratios))
    multiples = [int(ratio * common) for ratio in ratios]
    amplitudes: dict[int, float] = {}
    for multiple in multiples:
        for overtone in range(1, 5):
            harmonic = multiple * overtone
            amplitudes[harmonic] = amplitudes.get(harmonic, 0.0) + brightness ** (overtone - 1) / overtone
    return _additive_table(sorted(amplitudes.items())), tones[0] / common


def _play_bass(track: list[float], song: _Arrangement) -> None:
    table = _bass_table()
    attack, release = round(0.004 * SAMPLE_RATE), round(0.025 * SAMPLE_RATE)

    @functools.cache
    def pluck(freq: float, length: int) -> list[float]:
        return _steady_note(table, freq, length, attack, release, 0.35, _BASS_GAIN)

    for note in song.bass_notes:
        _add_into(track, note.start, pluck(note.freq, note.length), note.gain)


@functools.lru_cache(maxsize=1)
def _bass_table() -> list[float]:
    return _additive_table(((1, 1.0), (2, 0.45), (3, 0.25), (4, 0.1), (5, 0.05)))


def _play_drums(track: list[float], song: _Arrangement) -> None:
    sounds = _drum_sounds(song.noise_seed, song.kick_drop_hz)
    for kind, start, gain in song.drum_hits:
        variants = sounds[kind]
        _add_into(track, start, variants[start % len(variants)], gain)


@functools.lru_cache(maxsize=4)
def _drum_sounds(noise_seed: str, kick_drop_hz: float) -> dict[str, tuple[list[float], ...]]:
    rng = random.Random(noise_seed)
    return {
        "kick": (_kick(kick_drop_hz),),
        "snare": tuple(_snare(rng) for _ in range(3)),
        "hat": tuple(_hat(rng) for _ in range(4)),
    }


def _kick(drop_hz: float) -> list[float]:
    """A sine sweeping down from 45 + drop_hz to 45 Hz, decaying."""
    count, tau = round(0.35 * SAMPLE_RATE), 0.04
    sweep = _decay(count, tau)
    amplitude = _decay(count, 0.12)
    return _fade_tail([
        math.sin(2.0 * math.pi * (45.0 * i / SAMPLE_RATE + drop_hz * tau * (1.0 - sweep[i])))
        * amplitude[i] * min(1.0, i / (0.002 * SAMPLE_RATE))
        for i in range(count)
    ])


def _snare(rng: random.Random) -> list[float]:
    """A short 185 Hz thump under a burst of noise."""
    count = round(0.2 * SAMPLE_RATE)
    tone = [0.5 * _SINE[(i * 185 * _TABLE_SIZE // SAMPLE_RATE) & _TABLE_MASK] for i in range(count)]
    noise = [0.6 * (2.0 * rng.random() - 1.0) for _ in range(count)]
    tone = list(map(operator.mul, tone, _decay(count, 0.04)))
    return _fade_tail(list(map(operator.add, tone, map(operator.mul, noise, _decay(count, 0.06)))))


def _hat(rng: random.Random) -> list[float]:
    """Differenced (so high-passed) white noise with a fast decay."""
    count = round(0.05 * SAMPLE_RATE)
    noise = [2.0 * rng.random() - 1.0 for _ in range(count + 1)]
    hiss = map(operator.sub, noise[1:], noise)
    return _fade_tail(list(map(operator.mul, hiss, _decay(count, 0.012, 0.5))))


def _decay(count: int, seconds: float, start: float = 1.0) -> list[float]:
    """`count` samples of start * exp(-t / seconds)."""
    ratio = math.exp(-1.0 / (seconds * SAMPLE_RATE))
    return list(itertools.accumulate(itertools.repeat(ratio, count - 1), operator.mul, initial=start))


def _fade_tail(samples: list[float], fade: int = 64) -> list[float]:
    for i in range(1, min(fade, len(samples)) + 1):
        samples[-i] *= (i - 1) / fade
    return samples


# --- composition -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _arrangement(seed: int) -> _Arrangement:
    """Compose the loop: key, tempo, chords, melody, bass line and drum pattern, all from the seed."""
    rng = random.Random(f"suno-sandbox-song:{seed}")
    bpm = rng.choice(_TEMPOS)
    beat = SAMPLE_RATE * 60.0 / bpm
    bars = round(LOOP_SECONDS * bpm / 240.0)
    pitch_class = rng.randrange(12)
    bass_root = 440.0 * 2.0 ** ((33 + (pitch_class - 9) % 12 - 69) / 12.0)  # A1..G#2
    scale = rng.choice((_MAJOR, _PENTATONIC))
    progression = rng.choice(_PROGRESSIONS)
    chords = [progression[bar % len(progression)] for bar in range(bars)]
    return _Arrangement(
        vocal_notes=tuple(_compose_melody(rng, beat, bass_root * 4.0, scale, chords)),
        bass_notes=tuple(_compose_bass(rng, beat, bass_root, chords)),
        pad_chords=tuple(_compose_pads(beat, bass_root * 4.0, chords)),
        drum_hits=tuple(_compose_drums(rng, beat, bars)),
        voice_slope=rng.uniform(0.8, 1.2),
        vibrato_hz=rng.uniform(5.0, 6.0),
        vibrato_cents=rng.uniform(20.0, 35.0),
        pad_brightness=rng.uniform(0.25, 0.5),
        kick_drop_hz=rng.uniform(60.0, 110.0),
        noise_seed=f"suno-sandbox-noise:{seed}",
    )


def _just(semitones: int) -> Fraction:
    octave, degree = divmod(semitones, 12)
    return _JUST[degree] * Fraction(2) ** octave


def _at(beat: float, beats: float) -> int:
    return round(beats * beat)


def _compose_melody(rng: random.Random, beat: float, tonic: float, scale: tuple[int, ...],
                    chords: list[str]) -> list[_Note]:
    """Two-bar phrases in an A B A C ... form; strong beats land on chord tones."""
    low, high = max(_MELODY_RANGE_HZ[0], 0.74 * tonic), min(_MELODY_RANGE_HZ[1], 2.3 * tonic)
    pool = sorted((freq, degree) for octave in range(-2, 3) for degree in scale
                  if low <= (freq := tonic * float(_just(12 * octave + degree))) <= high)
    phrases: dict[str, list[tuple[float, float, int]]] = {}
    notes: list[_Note] = []
    vowel = rng.choice(_VOWEL_NAMES)
    for index in range(len(chords) // 2):
        label = "A" if index % 2 == 0 else ("B" if index % 4 == 1 else "C")
        bar = 2 * index
        if label not in phrases:
            phrases[label] = _compose_phrase(rng, pool, chords[bar:bar + 2], ends_home=label != "A")
        for onset, length, slot in phrases[label]:
            vowel = rng.choice([name for name in _VOWEL_NAMES if name != vowel])
            gap = min(0.06 * SAMPLE_RATE, 0.2 * length * beat)
            notes.append(_Note(start=_at(beat, 4 * bar + onset), length=round(length * beat - gap),
                               freq=pool[slot][0], vowel=vowel, gain=0.85 if onset % 1 else 1.0))
    return notes


def _compose_phrase(rng: random.Random, pool: list[tuple[float, int]], chords: list[str],
                    ends_home: bool) -> list[tuple[float, float, int]]:
    """(onset beat within the phrase, length in beats, index into pool) for each syllable."""
    rhythms = (rng.choice(_FIRST_BAR_RHYTHMS), rng.choice(_SECOND_BAR_RHYTHMS))
    slot = rng.randrange(len(pool) // 4, len(pool) // 2 + 1)
    syllables = []
    for bar, (rhythm, chord) in enumerate(zip(rhythms, chords, strict=True)):
        chord_degrees = {semitone % 12 for semitone in _CHORDS[chord]}
        onset = 0.0
        for position, length in enumerate(rhythm):
            slot = _step(rng, slot, len(pool))
            last = bar == 1 and position == len(rhythm) - 1
            if last and ends_home:
                slot = _nearest(pool, slot, {0})
            elif onset % 2 == 0 or last:
                slot = _nearest(pool, slot, chord_degrees)
            syllables.append((4 * bar + onset, float(length), slot))
            onset += length
    return syllables


def _step(rng: random.Random, slot: int, size: int) -> int:
    """A melodic step that drifts back toward the middle of the range the further it strays."""
    step = rng.choice(_MELODY_STEPS)
    pull = (size - 1) / 2 - slot
    if step * pull < 0 and rng.random() < 2.0 * abs(pull) / size:
        step = -step
    return min(max(slot + step, 0), size - 1)


def _nearest(pool: list[tuple[float, int]], slot: int, degrees: set[int]) -> int:
    candidates = [i for i, (_, degree) in enumerate(pool) if degree in degrees]
    return min(candidates, key=lambda i: (abs(i - slot), i)) if candidates else slot


def _compose_bass(rng: random.Random, beat: float, root: float, chords: list[str]) -> list[_Note]:
    pattern = rng.choice(_BASS_PATTERNS)
    notes = []
    for bar, chord in enumerate(chords):
        chord_root = root * float(_just(_CHORDS[chord][0]))
        if chord_root > 110.0:
            chord_root /= 2.0
        for start, length, ratio in pattern:
            onset = 4 * bar + start / 2
            notes.append(_Note(start=_at(beat, onset), length=round(0.92 * length / 2 * beat),
                               freq=chord_root * float(ratio), gain=1.0 if start % 2 == 0 else 0.8))
    return notes


def _compose_pads(beat: float, root: float, chords: list[str]) -> list[tuple[int, int, tuple[float, ...]]]:
    pads = []
    for bar, chord in enumerate(chords):
        start = _at(beat, 4 * bar)
        tones = tuple(root * float(_just(semitone)) for semitone in _CHORDS[chord])
        pads.append((start, _at(beat, 4 * bar + 4) - start, tones))
    return pads


def _compose_drums(rng: random.Random, beat: float, bars: int) -> list[tuple[str, int, float]]:
    kicks = rng.choice(_KICK_PATTERNS)
    sixteenth_hats = rng.random() < 0.4
    hits = []
    for bar in range(bars):
        for step in range(16):
            start = _at(beat, 4 * bar + step / 4)
            if step in kicks:
                hits.append(("kick", start, _KICK_GAIN))
            fill = bar == bars - 1 and step >= 12
            if fill:
                gain = _FILL_STEPS.get(step)
                if gain:
                    hits.append(("snare", start, _SNARE_GAIN * gain))
            elif step in _SNARE_STEPS:
                hits.append(("snare", start, _SNARE_GAIN))
            if step % 2 == 0 or sixteenth_hats:
                accent = 1.0 if step % 4 == 0 else (0.75 if step % 2 == 0 else 0.5)
                hits.append(("hat", start, _HAT_GAIN * accent * rng.uniform(0.85, 1.0)))
    return hits


# --- cover art ---------------------------------------------------------------------------------


def _cover_rows(seed: int, width: int, height: int) -> list[bytes]:
    rng = random.Random(f"suno-sandbox-cover:{seed}")
    hue = rng.random()
    first = colorsys.hsv_to_rgb(hue, rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.0))
    second = colorsys.hsv_to_rgb((hue + rng.uniform(0.2, 0.5)) % 1.0, rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.6))
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    ring_spacing = rng.uniform(5.0, 11.0)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            along = ((x - width / 2) * dx + (y - height / 2) * dy) / (width * 0.75) + 0.5
            mix = min(max(along, 0.0), 1.0)
            ring = 0.85 + 0.15 * math.cos(math.hypot(x - cx, y - cy) / ring_spacing * 2.0 * math.pi)
            row.extend(min(255, round(255 * ring * (a + (b - a) * mix))) for a, b in zip(first, second, strict=True))
        rows.append(bytes(row))
    return rows


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
