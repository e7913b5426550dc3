"""The sandbox's synthetic songs: valid WAVs, exact stems (mix == vocals + instrumental), voice-like vocals."""

from __future__ import annotations

import array
import cmath
import hashlib
import io
import math
import os
import struct
import subprocess
import sys
import tracemalloc
import wave
import zlib
from pathlib import Path

import pytest

from suno_stems_mcp.sandbox import audio
from suno_stems_mcp.sandbox.audio import LOOP_SECONDS, PARTS, SAMPLE_RATE, Song

ROOT = Path(__file__).resolve().parents[1]
LOOP = round(LOOP_SECONDS * SAMPLE_RATE)
FULL_SCALE = 32767


def decode(wav: bytes) -> tuple[wave._wave_params, array.array]:
    with wave.open(io.BytesIO(wav)) as reader:
        params = reader.getparams()
        frames = reader.readframes(params.nframes)
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    return params, samples


def rms(samples: array.array | list[float]) -> float:
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def fft(values: list[complex]) -> list[complex]:
    """Iterative radix-2 FFT; len(values) must be a power of two."""
    n = len(values)
    bits = n.bit_length() - 1
    out = [values[int(f"{i:0{bits}b}"[::-1], 2)] for i in range(n)]
    size = 2
    while size <= n:
        step = cmath.exp(-2j * math.pi / size)
        for start in range(0, n, size):
            w = 1.0
            for k in range(start, start + size // 2):
                odd = out[k + size // 2] * w
                out[k + size // 2] = out[k] - odd
                out[k] = out[k] + odd
                w *= step
        size *= 2
    return out


def band_energy(samples: array.array, frame: int = 2048, frames: int = 12) -> dict[str, float]:
    """Fractions of the energy of `frames` Hann-windowed frames spread over the song, by band."""
    window = [0.5 - 0.5 * math.cos(2 * math.pi * i / frame) for i in range(frame)]
    bin_hz = SAMPLE_RATE / frame
    bands = {"below_100": 0.0, "100_to_4000": 0.0, "above_4000": 0.0, "below_150": 0.0}
    stride = (len(samples) - frame) // frames
    for f in range(frames):
        chunk = samples[f * stride: f * stride + frame]
        spectrum = fft([x * w for x, w in zip(chunk, window, strict=True)])
        for k in range(1, frame // 2):
            power = abs(spectrum[k]) ** 2
            hz = k * bin_hz
            bands["below_100" if hz < 100 else "100_to_4000" if hz <= 4000 else "above_4000"] += power
            if hz < 150:
                bands["below_150"] += power
    total = bands["below_100"] + bands["100_to_4000"] + bands["above_4000"]
    return {name: value / total for name, value in bands.items()}


def pitch(frame: array.array, lowest_hz: float = 80.0, highest_hz: float = 1000.0) -> tuple[float, float]:
    """(frequency, normalised autocorrelation) of the frame's period, searched between the two limits.

    A periodic signal correlates as well at every multiple of its period: take the shortest lag that
    is a local peak within 10% of the best one.
    """
    window = len(frame) // 2
    head = frame[:window]
    energy = math.sqrt(sum(x * x for x in head)) or 1.0
    lags = range(int(SAMPLE_RATE / highest_hz) - 1, int(SAMPLE_RATE / lowest_hz) + 2)
    scores = []
    for lag in lags:
        tail = frame[lag:lag + window]
        tail_energy = math.sqrt(sum(x * x for x in tail)) or 1.0
        scores.append(sum(a * b for a, b in zip(head, tail, strict=True)) / (energy * tail_energy))
    best = max(scores[1:-1])
    for i in range(1, len(scores) - 1):
        if scores[i] >= 0.9 * best and scores[i - 1] <= scores[i] >= scores[i + 1]:
            return SAMPLE_RATE / lags[i], scores[i]
    return 0.0, 0.0


@pytest.fixture(scope="module")
def song() -> Song:
    return Song(seed=20240601, duration=LOOP_SECONDS)


@pytest.fixture(scope="module")
def stems(song: Song) -> dict[str, array.array]:
    return {part: audio.render(song, part) for part in PARTS}


# --- the WAV files ---------------------------------------------------------------------------


@pytest.mark.parametrize("duration", [0.5, 20.0, 45.3])
@pytest.mark.parametrize("part", ["mix", "vocals"])
def test_wav_decodes_mono_16_bit_with_one_frame_per_sample(duration: float, part: str) -> None:
    song = Song(seed=7, duration=duration)
    wav = audio.wav_bytes(song, part)
    params, samples = decode(wav)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, SAMPLE_RATE)
    assert params.comptype == "NONE"
    assert params.nframes == round(duration * SAMPLE_RATE) == len(samples)
    assert len(wav) == audio.wav_size(song) == 44 + 2 * params.nframes
    assert wav[:4] == b"RIFF" and struct.unpack("<I", wav[4:8])[0] == len(wav) - 8
    assert wav[36:40] == b"data" and wav[40:44] == struct.pack("<I", 2 * params.nframes)


def test_wav_size_does_not_render() -> None:
    song = Song(seed=987654321, duration=3000.0)
    before = audio._rendered.cache_info()
    assert audio.wav_size(song) == 44 + 2 * 3000 * SAMPLE_RATE
    assert audio._rendered.cache_info() == before


def test_longer_songs_tile_the_rendered_loop() -> None:
    song = Song(seed=7, duration=45.3)
    _, samples = decode(audio.wav_bytes(song, "mix"))
    loop = audio.render(song, "mix")
    assert len(loop) == LOOP
    assert samples[:LOOP] == loop
    assert samples[LOOP:2 * LOOP] == loop
    assert samples[2 * LOOP:] == loop[:len(samples) - 2 * LOOP]


def test_loop_edges_fade_so_tiling_does_not_click(stems: dict[str, array.array]) -> None:
    for part in PARTS:
        samples = stems[part]
        assert max(abs(x) for x in samples[:4]) < 0.01 * FULL_SCALE
        assert max(abs(x) for x in samples[-4:]) < 0.01 * FULL_SCALE


def test_short_songs_render_their_own_length_and_fade_out() -> None:
    song = Song(seed=11, duration=3.0)
    samples = audio.render(song, "instrumental")
    assert len(samples) == 3 * SAMPLE_RATE
    assert rms(samples) > 500
    assert max(abs(x) for x in samples[-4:]) < 0.01 * FULL_SCALE


# --- exact stems -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed, duration", [(1, 20.0), (-5, 6.0), (2**40 + 3, 7.25), (99, 0.5)])
def test_mix_is_exactly_vocals_plus_instrumental(seed: int, duration: float) -> None:
    song = Song(seed=seed, duration=duration)
    vocals, instrumental, mix = (audio.render(song, part) for part in ("vocals", "instrumental", "mix"))
    assert len(mix) == len(vocals) == len(instrumental) == round(duration * SAMPLE_RATE)
    assert list(mix) == [v + i for v, i in zip(vocals, instrumental, strict=True)]
    for part in (vocals, instrumental):
        assert max(abs(x) for x in part) <= 0.46 * FULL_SCALE


def test_streamed_stems_add_up_to_the_streamed_mix() -> None:
    song = Song(seed=7, duration=45.3)
    parts = {part: decode(b"".join(audio.iter_wav(song, part)))[1] for part in PARTS}
    assert list(parts["mix"]) == [v + i for v, i in zip(parts["vocals"], parts["instrumental"], strict=True)]


def test_parts_are_loud_and_distinct(stems: dict[str, array.array]) -> None:
    assert rms(stems["vocals"]) > 0.05 * FULL_SCALE
    assert rms(stems["instrumental"]) > 0.03 * FULL_SCALE
    assert stems["vocals"] != stems["instrumental"]
    assert stems["mix"] != stems["vocals"] and stems["mix"] != stems["instrumental"]
    peak = max(abs(x) for x in stems["mix"])
    assert 0.5 * FULL_SCALE < peak <= FULL_SCALE


def test_peaks_are_normalised_to_leave_headroom(stems: dict[str, array.array]) -> None:
    for part in ("vocals", "instrumental"):
        assert 0.44 * FULL_SCALE <= max(abs(x) for x in stems[part]) <= 0.45 * FULL_SCALE + 1


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seeds_differ() -> None:
    first = audio.wav_bytes(Song(seed=42, duration=2.5), "mix")
    audio._rendered.cache_clear()
    audio._arrangement.cache_clear()
    assert audio.wav_bytes(Song(seed=42, duration=2.5), "mix") == first
    others = {audio.wav_bytes(Song(seed=seed, duration=2.5), "mix") for seed in (43, 44, -42)}
    assert first not in others and len(others) == 3
    assert audio.render(Song(5, 2.5), "vocals") != audio.render(Song(6, 2.5), "vocals")
    assert audio.render(Song(5, 2.5), "instrumental") != audio.render(Song(6, 2.5), "instrumental")


@pytest.mark.slow
def test_same_bytes_in_a_fresh_process() -> None:
    code = (
        "import hashlib, sys\n"
        "from suno_stems_mcp.sandbox import audio\n"
        "song = audio.Song(seed=42, duration=25.0)\n"
        "for part in audio.PARTS:\n"
        "    print(hashlib.sha256(b''.join(audio.iter_wav(song, part))).hexdigest())\n"
        "print(hashlib.sha256(audio.cover_png(42)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    song = Song(seed=42, duration=25.0)
    expected = [hashlib.sha256(audio.wav_bytes(song, part)).hexdigest() for part in PARTS]
    expected.append(hashlib.sha256(audio.cover_png(42)).hexdigest())
    assert result.stdout.split() == expected


def test_render_returns_a_copy_of_the_cache() -> None:
    song = Song(seed=8, duration=1.0)
    samples = audio.render(song, "vocals")
    original = samples[1000]
    samples[1000] = original + 1
    assert audio.render(song, "vocals")[1000] == original


# --- what the stems sound like ---------------------------------------------------------------


def test_vocal_energy_lies_in_the_voice_band(stems: dict[str, array.array]) -> None:
    vocals = band_energy(stems["vocals"])
    assert vocals["100_to_4000"] > 0.97
    assert vocals["below_150"] < 0.02


def test_instrumental_has_the_bass_and_kick_the_vocals_lack(stems: dict[str, array.array]) -> None:
    instrumental = band_energy(stems["instrumental"])
    vocals = band_energy(stems["vocals"])
    assert instrumental["below_150"] > 0.2
    assert instrumental["below_150"] > 20 * vocals["below_150"]


def test_vocals_are_pitched_in_the_singing_range(stems: dict[str, array.array]) -> None:
    vocals = stems["vocals"]
    frame, hop = 1024, SAMPLE_RATE // 2
    loudest = max(rms(vocals[start:start + frame]) for start in range(0, len(vocals) - frame, hop))
    voiced = [vocals[start:start + frame] for start in range(0, len(vocals) - frame, hop)
              if rms(vocals[start:start + frame]) > 0.3 * loudest]
    assert len(voiced) >= 15
    pitches = [pitch(chunk) for chunk in voiced]
    clear = [hz for hz, strength in pitches if strength > 0.8]
    assert len(clear) >= 0.8 * len(voiced)
    assert all(150 <= hz <= 1000 for hz in clear)
    assert len({round(12 * math.log2(hz / 440)) for hz in clear}) >= 3  # a melody, not a drone


def test_vocals_have_gaps_between_phrases(stems: dict[str, array.array]) -> None:
    vocals = stems["vocals"]
    step = SAMPLE_RATE // 20
    levels = [rms(vocals[start:start + step]) for start in range(0, len(vocals) - step, step)]
    quiet = sum(level < 0.01 * FULL_SCALE for level in levels)
    assert 0.05 * len(levels) < quiet < 0.5 * len(levels)


def test_render_does_no_python_work_per_sample() -> None:
    """Synthesis stays in C-level iterators (what keeps a 20 s part well under a second), checked without a
    clock: the Python function calls a render makes, far fewer than its samples (a per-sample Python step would
    make at least one call each). Timing belongs to bench/, not to a test on a shared machine."""
    song = Song(seed=31337, duration=LOOP_SECONDS)
    audio._rendered.cache_clear()
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        for part in PARTS:
            audio.render(song, part)
    finally:
        sys.setprofile(None)
    assert 0 < calls < LOOP / 20, f"{calls} Python calls to render {LOOP} samples of each part"


# --- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("duration, chunk_size", [
    (0.5, 1), (0.5, 44), (0.5, 1000), (0.5, 65536), (0.5, 10**6),
    (20.0, 44), (20.0, 1000), (20.0, 65536), (45.3, 45), (45.3, 65536), (45.3, 10**6),
])
def test_iter_wav_streams_the_same_bytes(duration: float, chunk_size: int) -> None:
    song = Song(seed=7, duration=duration)
    chunks = list(audio.iter_wav(song, "instrumental", chunk_size=chunk_size))
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert b"".join(chunks) == audio.wav_bytes(song, "instrumental")


def test_iter_wav_of_a_long_song_stays_small_in_memory() -> None:
    song = Song(seed=77, duration=600.0)
    audio.render(song, "mix")  # rendering is bounded by the loop; streaming must add next to nothing
    size = audio.wav_size(song)
    assert size == 44 + 2 * 600 * SAMPLE_RATE
    tracemalloc.start()
    try:
        total, biggest, digest = 0, 0, hashlib.sha256()
        for chunk in audio.iter_wav(song, "mix"):
            total += len(chunk)
            biggest = max(biggest, len(chunk))
            digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert biggest <= 65536
    assert peak < 4 * 2 * LOOP < size / 5


def test_iter_wav_renders_the_loop_once_whatever_the_duration() -> None:
    song = Song(seed=78, duration=3000.0)
    audio._rendered.cache_clear()
    before = audio._rendered.cache_info()
    chunks = audio.iter_wav(song, "vocals", chunk_size=1 << 20)
    assert audio._rendered.cache_info() == before  # nothing is rendered until the first chunk is asked for
    total = sum(len(chunk) for chunk in chunks)
    after = audio._rendered.cache_info()
    assert total == audio.wav_size(song) > 100_000_000
    assert after.misses == before.misses + 1
    assert audio._rendered(78, LOOP, "vocals") is audio._rendered(78, LOOP, "vocals")
    assert len(audio._rendered(78, LOOP, "vocals")) == LOOP


# --- cover art -------------------------------------------------------------------------------


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind = png[offset + 4:offset + 8]
        body = png[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        offset += 12 + length
    assert offset == len(png)
    return chunks


def test_cover_png_is_a_valid_64_pixel_square() -> None:
    png = audio.cover_png(123)
    chunks = png_chunks(png)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, compression, filtering, interlace) == (64, 64, 8, 2, 0, 0, 0)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    rows = [pixels[y * (1 + 3 * width):(y + 1) * (1 + 3 * width)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    assert len({row[1:] for row in rows}) > 10  # a picture, not a flat colour


def test_cover_png_depends_on_the_seed_only() -> None:
    assert audio.cover_png(1) == audio.cover_png(1)
    assert len({audio.cover_png(seed) for seed in (1, 2, 3, -1)}) == 4


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["karaoke", "Mix", "", "drums"])
def test_unknown_part_is_rejected(part: str) -> None:
    song = Song(seed=1, duration=1.0)
    with pytest.raises(ValueError, match="part"):
        audio.render(song, part)
    with pytest.raises(ValueError, match="part"):
        audio.wav_bytes(song, part)
    with pytest.raises(ValueError, match="part"):
        audio.iter_wav(song, part)


@pytest.mark.parametrize("duration", [0, 0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_duration_is_rejected(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        audio.render(Song(seed=1, duration=duration), "mix")


def test_render_rechecks_songs_built_around_the_constructor() -> None:
    song = Song(seed=1, duration=1.0)
    object.__setattr__(song, "duration", -2.0)
    for call in (lambda: audio.render(song, "mix"), lambda: audio.wav_size(song),
                 lambda: audio.wav_bytes(song, "mix"), lambda: audio.iter_wav(song, "mix")):
        with pytest.raises(ValueError, match="duration"):
            call()


def test_bad_chunk_size_and_oversized_files_are_rejected() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        audio.iter_wav(Song(seed=1, duration=1.0), "mix", chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        audio.iter_wav(Song(seed=1, duration=1.0), "mix", chunk_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too long"):
        audio.wav_size(Song(seed=1, duration=200_000.0))


def test_seed_and_duration_types_are_checked() -> None:
    with pytest.raises(TypeError, match="seed"):
        Song(seed="7", duration=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="duration"):
        Song(seed=7, duration="1.0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        audio.cover_png(1.5)  # type: ignore[arg-type]
    assert Song(seed=7, duration=3) == Song(seed=7, duration=3.0)


def test_a_song_shorter_than_one_sample_is_an_empty_wav() -> None:
    song = Song(seed=1, duration=1e-6)
    assert len(audio.render(song, "mix")) == 0
    params, samples = decode(audio.wav_bytes(song, "mix"))
    assert params.nframes == 0 and len(samples) == 0
    assert b"".join(audio.iter_wav(song, "vocals")) == audio.wav_bytes(song, "vocals") and audio.wav_size(song) == 44
