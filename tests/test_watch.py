"""`ipad-detect watch`: alarms on a played mp4 where the labels are, flat memory on a long stream."""
import json

import numpy as np
import pytest
from conftest import CYCLE_FRAMES, render_frame, write_video
from test_footage import write_mp4

from ipad_detect.calibrate import Threshold, alarm_spans
from ipad_detect.checkpoint import load_checkpoint
from ipad_detect.cli import main
from ipad_detect.watch import watch


def jittered_phases(num_frames, start, seed):
    """A cycle of CYCLE_FRAMES frames whose speed drifts by up to 15% (as real machines' cycles do),
    so that many positions of the square are seen in training."""
    speed = 1 + 0.15 * np.sin(2 * np.pi * np.arange(num_frames) / 37 + seed)
    return np.mod(start + np.cumsum(speed) / CYCLE_FRAMES, 1.0)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Three normal training videos of 8 cycles, clip-nn trained and calibrated on them."""
    root = tmp_path_factory.mktemp("watch")
    scene = root / "S01"
    for v, start in enumerate((0.0, 0.37, 0.71)):
        write_video(scene, "training", f"{v + 1:02d}", jittered_phases(96, start, v), period_format="structured")
    run = tmp_path_factory.mktemp("watch-run") / "run"  # outside --data: nothing is written into a dataset
    assert main(["train", "--data", str(root), "--scene", "S01", "--config", "tiny", "--model", "clip-nn",
                 "--out", str(run), "--quiet"]) == 0
    assert main(["calibrate", "--checkpoint", str(run), "--data", str(root), "--scene", "S01", "--fps", "10",
                 "--min-duration", "0.3", "--quiet"]) == 0
    return root, run


def played(path, num_frames, red=slice(0, 0), fps=10.0):
    """An mp4 of the square at normal speed that turns red over `red` frames; its labels."""
    phases = jittered_phases(num_frames, 0.5, 3)
    colours = [(235, 30, 30) if red.start <= i < red.stop else (235, 235, 235) for i in range(num_frames)]
    write_mp4(path, np.stack([render_frame(p, c) for p, c in zip(phases, colours)]), fps)
    labels = np.zeros(num_frames, np.uint8)
    labels[red] = 1
    return labels


def test_alarms_of_a_played_mp4_overlap_the_labelled_anomaly(calibrated, tmp_path, capsys):
    root, run = calibrated
    mp4 = tmp_path / "red.mp4"
    labels = played(mp4, 96, red=slice(40, 52))
    out = tmp_path / "scores.jsonl"
    assert main(["watch", str(mp4), "--checkpoint", str(run), "--out", str(out), "--alarms",
                 str(tmp_path / "alarms")]) == 0
    printed = capsys.readouterr().out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    scores = [line for line in lines if "score" in line]
    alarms = [line for line in lines if line.get("event") == "alarm"]
    assert [s["frame"] for s in scores] == list(range(8, 96 - 7))  # every clip centre, in order
    labelled = alarm_spans(labels.astype(float), 0.5, 1)[0]
    overlapping = all(a["start_frame"] <= labelled[1] and a["end_frame"] >= labelled[0] for a in alarms)
    assert alarms and overlapping, (alarms, labelled)
    assert all((tmp_path / "alarms" / a["sheet"].rsplit("/", 1)[1]).is_file() for a in alarms)
    assert "end of the source: 96 frames" in printed and f"{len(alarms)} alarm(s)" in printed


@pytest.mark.slow
def test_memory_stays_flat_over_thousands_of_looped_frames(calibrated, tmp_path):
    root, run = calibrated
    mp4 = tmp_path / "normal.mp4"
    played(mp4, 48)
    checkpoint = load_checkpoint(run)
    resident = {}

    def sample(count):
        if count in (500, 3000):
            with open("/proc/self/statm") as statm:
                resident[count] = int(statm.read().split()[1]) * 4096
    summary = watch(checkpoint, mp4, Threshold.load(checkpoint.path), loop=True, max_frames=3000,
                    report=lambda line: None, on_frame=sample)
    assert summary.frames == 3000 and summary.scored == 3000 - 15
    growth = resident[3000] - resident[500]
    assert growth < 8 * 2**20, f"resident memory grew {growth / 2**20:.1f} MB from frame 500 to 3000"


def test_the_default_detector_watches_with_a_given_threshold_and_reports_its_phase(calibrated, tmp_path, capsys):
    root, _ = calibrated
    run = tmp_path / "full"
    assert main(["train", "--data", str(root), "--scene", "S01", "--config", "tiny", "--epochs", "1",
                 "--max-clips", "8", "--out", str(run), "--quiet"]) == 0
    mp4 = tmp_path / "red.mp4"
    played(mp4, 40, red=slice(20, 30))
    out = tmp_path / "scores.jsonl"
    assert main(["watch", str(mp4), "--checkpoint", str(run), "--threshold", "-1000", "--min-frames", "2",
                 "--out", str(out), "--alarms", str(tmp_path / "alarms")]) == 0  # every frame alarms
    alarms = [json.loads(line) for line in out.read_text().splitlines() if "event" in line]
    assert len(alarms) == 1 and alarms[0]["start_frame"] == 8 and alarms[0]["end_frame"] == 40 - 8
    assert 0 <= alarms[0]["phase"] < 1 and "1 alarm(s)" in capsys.readouterr().out


@pytest.mark.parametrize("every", [1, 3])
def test_clips_scored_in_batches_score_as_one_at_a_time(calibrated, tmp_path, every):
    root, _ = calibrated
    run = tmp_path / "full"
    assert main(["train", "--data", str(root), "--scene", "S01", "--config", "tiny", "--epochs", "1",
                 "--max-clips", "8", "--out", str(run), "--quiet"]) == 0
    checkpoint = load_checkpoint(run)
    mp4 = tmp_path / "red.mp4"
    played(mp4, 45, red=slice(20, 30))
    scores = {}
    for batch in (1, 4):
        out = tmp_path / f"batch-{batch}.jsonl"
        with open(out, "w") as file:
            summary = watch(checkpoint, mp4, Threshold(-1000.0, 2, 0.0, 0.0, 0, 0, "test", checkpoint.kind), file,
                            every=every, batch=batch, report=lambda line: None)
        scores[batch] = [json.loads(line) for line in out.read_text().splitlines() if "score" in json.loads(line)]
        assert summary.frames == 45 and summary.scored == len(range(0, 45 - 15, every))
    assert [s["frame"] for s in scores[4]] == [s["frame"] for s in scores[1]] == list(range(8, 45 - 7, every))
    np.testing.assert_allclose([s["score"] for s in scores[4]], [s["score"] for s in scores[1]], rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 4])
def test_realtime_paces_a_file_and_counts_what_it_drops(calibrated, tmp_path, batch):
    root, run = calibrated
    mp4 = tmp_path / "fast.mp4"
    played(mp4, 48, fps=40)
    checkpoint = load_checkpoint(run)
    summary = watch(checkpoint, mp4, Threshold.load(checkpoint.path), realtime=True, report=lambda line: None,
                    batch=batch)
    assert summary.frames == 48 and summary.scored + summary.dropped == 48 - 15
    assert summary.seconds >= 48 / 40 * 0.9  # it arrived at the file's rate


@pytest.mark.parametrize("args, message", [
    (["nothing.mp4"], "is not a video file, a camera index"),
    (["rtsp://127.0.0.1:9/none"], "opencv cannot open"),
])
def test_watch_errors_are_one_line(calibrated, capsys, args, message):
    _, run = calibrated
    assert main(["watch", *args, "--checkpoint", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_stream_that_drops_is_reconnected_and_one_that_stays_away_ends_cleanly(calibrated, monkeypatch, tmp_path):
    """A local MJPEG-over-HTTP camera: it serves 40 frames and hangs up, twice, then refuses."""
    import http.server
    import io
    import threading

    from PIL import Image

    import ipad_detect.watch as watching

    jpegs = []
    for phase in jittered_phases(40, 0.2, 5):
        buffer = io.BytesIO()
        Image.fromarray(render_frame(phase)).save(buffer, format="JPEG")
        jpegs.append(buffer.getvalue())
    connections = []

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            connections.append(self.path)
            if len(connections) > 2:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for jpeg in jpegs:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(watching, "REOPEN_PAUSE_S", 0.05)
    _, run = calibrated
    checkpoint = load_checkpoint(run)
    said = []
    try:
        summary = watch(checkpoint, f"http://127.0.0.1:{server.server_address[1]}/cam.mjpg",
                        Threshold.load(checkpoint.path), report=said.append)
    finally:
        server.shutdown()
    assert summary.frames == 80 and summary.reconnects == 1 and summary.scored == 80 - 15
    assert summary.ended == "the stream did not come back after 5 tries"
    assert any("no frame after frame 40 (stream stalled or dropped); reconnecting, try 1 of 5" in s for s in said), said


def test_ctrl_c_ends_watch_cleanly_with_a_summary(calibrated, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    _, run = calibrated
    mp4 = tmp_path / "normal.mp4"
    played(mp4, 48)
    out = tmp_path / "scores.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "ipad_detect.cli", "watch", str(mp4), "--checkpoint", str(run),
                             "--loop", "--out", str(out), "--alarms", str(tmp_path / "alarms")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out.exists() and out.read_text().count("\n") > 20):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"watch still running 60 s after Ctrl-C\nstdout:\n{stdout}\nstderr:\n{stderr}") from None
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert "interrupted (Ctrl-C):" in stdout and "scored" in stdout, stdout
    assert all(json.loads(line) for line in out.read_text().splitlines())  # no line cut in half
