#!/usr/bin/env bash
# Gestures walkthrough: generated videos where no single frame tells the class.
#
# A sprite moves left, right, up or down (wrapping around the edges) over a random background
# with noise; its position in any one frame is uniform whatever the class. A CNN-LSTM over clips
# must reach >= 95% test accuracy, while a per-frame CNN with a majority vote per video stays
# near chance (25%): the proof that temporal modelling works end to end.
#
# Usage: examples/gestures/run.sh [WORKDIR]    (about 5 minutes on 2 CPU cores)
set -euo pipefail
WORK="${1:-$(mktemp -d /tmp/dataprep-gestures.XXXXXX)}"
PER_CLASS="${PER_CLASS:-100}"
EPOCHS="${EPOCHS:-25}"
mkdir -p "$WORK"
cd "$WORK"
echo "working in $WORK"

# 1. Generate 4 x PER_CLASS videos (32x32 px, 16 frames, H.264) in class folders.
python3 -m dataprep.testing.gestures raw --per-class "$PER_CLASS" --frames 16 --size 32

# 2. A workspace; ingest with the folder names as labels.
dataprep init ws --classes left,right,up,down
cd ws
dataprep --quiet ingest ../raw --label-from-dir

# 3. Every frame, at 32 px (the size the videos already have).
dataprep --quiet frames --all --size 32

# 4. Split by media (stratified, seeded), then normalization stats over the train frames.
dataprep split --ratios 0.7,0.15,0.15 --seed 0
dataprep --quiet stats

# 5. Two exports: clips of 8 frames (2 per video), and single frames.
dataprep --quiet export --unit clip --clip-len 8 --clip-stride 8 --name gestures-clips
dataprep --quiet export --unit frame --name gestures-frames

# 6. The CNN-LSTM on clips: per-frame cnn-bn encoder -> LSTM.
dataprep train-baseline --export gestures-clips --model cnn-lstm --epochs "$EPOCHS" \
  --batch-size 16 --lr 0.003 --patience 6 --seed 0 --run-name gestures-cnn-lstm

# 7. The per-frame CNN; evaluate prints the per-video majority vote next to frame accuracy.
dataprep train-baseline --export gestures-frames --model cnn --epochs 10 --seed 0 \
  --run-name gestures-cnn
dataprep evaluate gestures-cnn

# 8. Predict a new video that is not in the workspace (per-clip and whole-video probabilities).
python3 - <<'PY'
import numpy as np
from dataprep.testing.gestures import GestureSpec, gesture_frames
from dataprep.testing.media import write_video
rng = np.random.default_rng(12345)
spec = GestureSpec(frames=24)
write_video("../new_gesture_left.mp4", frames=gesture_frames("left", rng, spec), fps=10.0)
PY
dataprep predict gestures-cnn-lstm ../new_gesture_left.mp4

python3 - <<'PY'
import json
lstm = json.load(open("runs/gestures-cnn-lstm/metrics.json"))
cnn = json.load(open("runs/gestures-cnn/metrics.json"))
print(f"cnn-lstm test accuracy (clips): {lstm['test_accuracy']:.4f}")
print(f"cnn test accuracy (frames): {cnn['test_accuracy']:.4f}; "
      f"majority vote per video: {cnn['media_vote']['accuracy']:.4f}")
print(f"cnn-lstm training: {lstm['training']['train_clips_per_s']:.1f} clips/s, "
      f"{lstm['training']['train_images_per_s']:.0f} frames/s")
print(f"plots: runs/gestures-cnn-lstm/curves.png runs/gestures-cnn-lstm/confusion.png")
PY
