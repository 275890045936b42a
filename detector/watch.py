"""`ipad-detect watch`: online scoring of a video file, camera or stream, with alarms.

Frames are scored as they arrive: the last clip of frames (16 for the detector) is all that is
kept for scoring, so memory stays flat however long the stream runs. Every clip gives the anomaly
score of its centre frame (the raw score `calibrate` chose its threshold on); an alarm opens when
the score stays above the threshold for the calibrated minimum duration and closes when it falls
below, as one event: first and last frame, peak score and frame, and, for a model with a phase
head, the phase it predicted at the peak. Each alarm's frames are kept, at most SHEET_FRAMES
evenly spread, and written as a contact sheet.

A live source that stops giving frames (a stalled or dropped stream) is reported and reopened,
REOPEN_TRIES times with a growing pause; a file ends at its end (or starts again with `loop`).
With `realtime`, a reader thread reads every frame into the clip as it arrives and the newest clip
is scored when the previous one is done: the clips in between are dropped (counted; their frames
stay in the clips around them, so no clip skips time), and the scores never fall behind the
source. A file is then paced at its own frame rate, as a camera would deliver it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ipad_detect.calibrate import Threshold
from ipad_detect.checkpoint import Checkpoint
from ipad_detect.footage import FootageError, open_capture
from ipad_detect.registry import get_kind

SHEET_FRAMES = 12  # frames of one alarm kept for its contact sheet
REOPEN_TRIES = 5
REOPEN_PAUSE_S = 1.0  # doubled after every failed try


def parse_source(text: str) -> Path | int | str:
    """A camera index (digits), a URL (rtsp://, http://, …) or a video file."""
    if text.isdigit():
        return int(text)
    if "://" in text:
        return text
    path = Path(text)
    if not path.is_file():
        raise FootageError(f"source {text} is not a video file, a camera index (0, 1, …) or a URL (rtsp://…)")
    return path


@dataclass
class Alarm:
    start: int
    end: int
    peak_score: float
    peak_frame: int
    phase: float | None  # the model's predicted phase at the peak, where it has a phase head
    sheet: str | None = None  # its contact sheet's file, once written
    frames: list[np.ndarray] = field(default_factory=list, repr=False)  # kept for the sheet

    def to_json(self) -> dict:
        return {"event": "alarm", "start_frame": self.start, "end_frame": self.end, "peak_score": self.peak_score,
                "peak_frame": self.peak_frame, "phase": self.phase, "sheet": self.sheet}


@dataclass
class Summary:
    frames: int = 0  # read from the source
    scored: int = 0
    dropped: int = 0  # by --realtime
    reconnects: int = 0
    alarms: list[Alarm] = field(default_factory=list)
    seconds: float = 0.0
    ended: str = "end of the source"
    latency_sum_s: float = 0.0  # from the arrival of a clip's newest frame to its score
    latency_max_s: float = 0.0

    @property
    def latency_mean_s(self) -> float:
        return self.latency_sum_s / self.scored if self.scored else 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Reader:
    """Frames of a source, RGB uint8, with reopening of live sources and, in realtime mode, a thread
    that keeps only the newest frame."""

    def __init__(self, source: Path | int | str, realtime: bool, loop: bool, report: Callable[[str], None],
                 limit: int | None = None):
        import cv2

        self.source, self.realtime, self.loop, self.report, self.limit = source, realtime, loop, report, limit
        self.live = not isinstance(source, Path)
        self.capture = open_capture(source)
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.reconnects = 0
        self.gave_up = False  # a live source that did not come back
        self.dropped = 0
        self.count = 0  # frames read from the source

    def _reopen(self) -> bool:
        pause = REOPEN_PAUSE_S
        self.capture.release()
        for attempt in range(1, REOPEN_TRIES + 1):
            self.report(f"{self.source}: no frame after frame {self.count} (stream stalled or dropped); "
                        f"reconnecting, try {attempt} of {REOPEN_TRIES}")
            time.sleep(pause)
            try:
                self.capture = open_capture(self.source)
            except FootageError:
                pause *= 2
                continue
            self.reconnects += 1
            return True
        return False

    def _read(self) -> np.ndarray | None:
        import cv2

        while self.limit is None or self.count < self.limit:
            ok, frame = self.capture.read()
            if ok:
                self.count += 1
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if self.live:
                if not self._reopen():
                    self.gave_up = True
                    return None
            elif self.loop and self.count:
                self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            else:
                return None
        return None

    def windows(self, size: int, clip_len: int, every: int, batch: int,
                stop: threading.Event) -> Iterator[tuple[list[tuple[int, np.ndarray, float]], list[int]]]:
        """The newest frames (index in the source, frame resized to size x size, time it arrived) and,
        within them, the starts of the clips to score: every `every`-th clip, `batch` of them at a time
        (the last ones at the end of the source). In realtime mode the clips that came due while the
        previous window was scored, the newest `batch` of them; the others are dropped and counted."""
        import cv2

        recent: deque[tuple[int, np.ndarray, float]] = deque(maxlen=clip_len + (batch - 1) * every)  # all kept
        due: deque[int] = deque(maxlen=batch)  # the last frames of the clips waiting to be scored
        came_due = 0  # clips that came due since the last window

        def take() -> bool:
            nonlocal came_due
            frame = self._read()
            if frame is None:
                return False
            index = self.count - 1
            recent.append((index, cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA),
                           time.perf_counter()))
            if index >= clip_len - 1 and (index - clip_len + 1) % every == 0:
                due.append(index)
                came_due += 1
            return True

        def window() -> tuple[list[tuple[int, np.ndarray, float]], list[int]]:
            nonlocal came_due
            frames, first = list(recent), recent[0][0]
            starts = [end - clip_len + 1 - first for end in due]
            self.dropped += came_due - len(due)
            due.clear()
            came_due = 0
            return frames, starts

        if not self.realtime:
            while not stop.is_set() and take():
                if len(due) == batch:
                    yield window()
            if due:
                yield window()
            return
        lock, arrived, finished = threading.Lock(), threading.Event(), threading.Event()

        def read_on():
            start = time.perf_counter()
            while not stop.is_set():
                with lock:
                    if not take():
                        break
                arrived.set()
                if not self.live:  # a file arrives at its frame rate, as from a camera
                    time.sleep(max(0.0, start + self.count / self.fps - time.perf_counter()))
            finished.set()
            arrived.set()

        thread = threading.Thread(target=read_on, daemon=True)
        thread.start()
        while True:
            ended = finished.is_set()
            with lock:
                ready = window() if due else None
            if ready is not None:
                yield ready
            elif ended:
                break
            else:
                arrived.wait(0.5)
                arrived.clear()
        stop.set()
        thread.join(timeout=5)

    def close(self) -> None:
        self.capture.release()


class _AlarmState:
    """Opens an alarm after `min_frames` scores above the threshold, closes it when one falls below."""

    def __init__(self, threshold: Threshold):
        self.threshold = threshold
        self.run: list[tuple[int, float, float | None, np.ndarray]] = []  # frames above, until the alarm opens
        self.open: Alarm | None = None
        self.step, self.seen = 1, 0  # the open alarm keeps every step-th of its frames for its sheet

    def _keep(self, frame: np.ndarray) -> None:
        if self.seen % self.step == 0:
            self.open.frames.append(frame)
            if len(self.open.frames) > SHEET_FRAMES:  # full: keep every other one, take half as many from now
                self.open.frames, self.step = self.open.frames[::2], self.step * 2
        self.seen += 1

    def update(self, index: int, score: float, phase: float | None, frame: np.ndarray) -> Alarm | None:
        """The alarm that this frame closes, if any."""
        if score > self.threshold.threshold:
            if self.open is None:
                self.run.append((index, score, phase, frame))
                if len(self.run) >= self.threshold.min_frames:
                    first = self.run[0]
                    peak = max(self.run, key=lambda r: r[1])
                    self.open = Alarm(first[0], index, peak[1], peak[0], peak[2])
                    self.step, self.seen = 1, 0
                    for entry in self.run:
                        self._keep(entry[3])
                    self.run = []
            else:
                self.open.end = index
                if score > self.open.peak_score:
                    self.open.peak_score, self.open.peak_frame, self.open.phase = score, index, phase
                self._keep(frame)
            return None
        self.run = []
        return self.close()

    def close(self) -> Alarm | None:
        done, self.open = self.open, None
        return done


def _contact_sheet(frames: list[np.ndarray], path: Path) -> str:
    from PIL import Image

    strip = np.concatenate(frames, axis=1)
    temporary = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(strip).save(temporary)
    temporary.replace(path)
    return str(path)


def score_clips(checkpoint: Checkpoint, frames: np.ndarray, starts: list[int],
                device: str | torch.device = "cpu") -> tuple[np.ndarray, list[float | None]]:
    """The anomaly scores of the clips starting at `starts` in `frames` (of each centre frame: minus
    the normality `score_video` gives), in one batch, and the phase the model's phase head predicts
    for each (None without one)."""
    config = checkpoint.config
    normality, probs = get_kind(checkpoint.kind).normality(checkpoint.model, frames, config, len(starts), device,
                                                          starts)
    phases = [None] * len(starts) if probs is None else list((probs.argmax(axis=1) + 0.5) / config.phase_bins)
    return -normality, phases


@contextmanager
def _stop_on_ctrl_c(stop: threading.Event, summary: Summary) -> Iterator[None]:
    """A first Ctrl-C sets `stop`: the loop ends after the window it is scoring, so no score line is cut
    in half and no torch or OpenCV call is torn mid-way (a KeyboardInterrupt raised inside one could
    leave the process hanging at exit). A second Ctrl-C interrupts at once. Signals can only be
    handled on the main thread; elsewhere Ctrl-C stays a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def asked(signum, frame) -> None:
        summary.ended = "interrupted (Ctrl-C)"
        stop.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, asked)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def watch(checkpoint: Checkpoint, source: Path | int | str, threshold: Threshold, out=None,
          alarm_dir: Path | None = None, realtime: bool = False, loop: bool = False, max_frames: int | None = None,
          every: int = 1, device: str | torch.device = "cpu", report: Callable[[str], None] = print,
          on_frame: Callable[[int], None] | None = None, onnx: Path | None = None, batch: int = 1) -> Summary:
    """Score `source` online until it ends, `max_frames` are read, or Ctrl-C; alarms reported as
    they close (and written as JSON lines to `out`, with every frame's score). Clips are scored
    `batch` at a time: more clips per second, each score later by up to batch - 1 clips. With
    `onnx`, the clips are scored by that exported graph in onnxruntime instead of torch."""
    config = checkpoint.config
    checkpoint.model.to(device).eval()
    if onnx is not None:
        from ipad_detect.data import to_clip_tensor
        from ipad_detect.export import OnnxScorer

        graph = OnnxScorer(onnx)

        def score(frames: np.ndarray, starts: list[int]) -> tuple[list[float], list[float | None]]:
            clips = torch.stack([to_clip_tensor(frames[s:s + config.clip_len]) for s in starts]).numpy()
            return graph.score(clips, config.clip_len, config.bank_weight)
    else:
        def score(frames: np.ndarray, starts: list[int]) -> tuple[np.ndarray, list[float | None]]:
            return score_clips(checkpoint, frames, starts, device)
    reader = _Reader(source, realtime, loop, report, max_frames)
    state = _AlarmState(threshold)
    summary = Summary()
    stop = threading.Event()
    started = time.perf_counter()
    centre = config.clip_len // 2

    def closed(alarm: Alarm | None) -> None:
        if alarm is None:
            return
        if alarm_dir is not None and alarm.frames:
            alarm.sheet = _contact_sheet(alarm.frames, alarm_dir / f"alarm-{alarm.start:07d}-{alarm.end:07d}.png")
        alarm.frames = []  # a summary keeps the alarm, not its pictures
        summary.alarms.append(alarm)
        line = json.dumps(alarm.to_json())
        report(f"alarm: frames {alarm.start}-{alarm.end}, peak score {alarm.peak_score:.4g} at frame "
               f"{alarm.peak_frame}" + ("" if alarm.phase is None else f", phase {alarm.phase:.2f}"))
        if out is not None:
            out.write(line + "\n")
            out.flush()

    with _stop_on_ctrl_c(stop, summary):
        try:
            for window, starts in reader.windows(config.image_size, config.clip_len, every, batch, stop):
                if on_frame is not None:
                    on_frame(reader.count)
                values, phases = score(np.stack([entry[1] for entry in window]), starts)
                scored = time.perf_counter()
                for start, value, phase in zip(starts, values, phases):
                    latency = scored - window[start + config.clip_len - 1][2]
                    summary.scored += 1
                    summary.latency_sum_s += latency
                    summary.latency_max_s = max(summary.latency_max_s, latency)
                    index, frame, _ = window[start + centre]
                    closed(state.update(index, float(value), phase, frame))
                    if out is not None:
                        line = {"frame": index, "score": float(value), "alarm": state.open is not None}
                        out.write(json.dumps(line) + "\n")
            if max_frames is not None and reader.count >= max_frames:
                summary.ended = f"{max_frames} frames read"
        except KeyboardInterrupt:
            summary.ended = "interrupted (Ctrl-C)"
        finally:
            stop.set()
            closed(state.close())
            reader.close()
            summary.frames = reader.count
            summary.seconds = time.perf_counter() - started
            summary.dropped, summary.reconnects = reader.dropped, reader.reconnects
            if reader.gave_up:
                summary.ended = f"the stream did not come back after {REOPEN_TRIES} tries"
    return summary
