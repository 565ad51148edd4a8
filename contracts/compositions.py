"""What a composition request may ask for (POST /jobs/{job_id}/compositions): the limits the
compose function checks (each a 400 naming its field), the CLI's flags and the README state.

The melody is given as for a training job (`{"sample": NAME}` or `{"midi_base64": ...}`, its
first note-bearing track is the melody), the instruments as `contracts.instruments` reads them.
"""

from __future__ import annotations

SEED_MIN = 0
SEED_MAX = 2**31 - 1  # a 32-bit signed integer: what every language's JSON reader keeps exact
DEFAULT_SEED = 0
# The longest melody the compose function accompanies. Generation time grows with the length
# (about 2 ms a bar on one CPU); 256 bars is a quarter of an hour of 4/4 at 70 bpm, well inside
# API Gateway's 29 s.
MAX_BARS = 256
# The compositions one job keeps; the next POST is a 409 until one is deleted.
MAX_PER_JOB = 1000
# How adventurous the accompaniment is (gan.encoding.perturb): the decoder adds `temperature` x
# seeded Gumbel noise to the model's per-step log-probabilities before it picks each voice's
# line, so each seed gets its own line. 0 is the likeliest line (the same for nearly every seed:
# the generator's own noise changes the chord on 8 % of beats); 1 samples each step from the
# model's own distribution, the smoothing and the parallel repair still applied. Measured on the
# test split's 43 melodies with the default model (python -m bench variety): at 0.3, seeds 0 and
# 1 give a different lower-voice chord (pitch-class set) on 56 % of beats, and each seed still
# meets every quality bar of bench/bench_training.py with room (consonance 0.91-0.92, bar 0.85;
# in key 0.97, bar 0.90; crossing 0.005, bar 0.05; pitch classes per bar 3.10, Bach 3.15 ± 0.5).
# At 0.6 the chord changes on 77 % of beats, consonance is down to 0.88; at 1.0 (the most
# allowed; beyond it the lines approach noise) on 91 %, and consonance (0.81), crossing (0.06-0.07)
# and pitch classes per bar (4.4) miss their bars.
TEMPERATURE_MIN = 0.0
TEMPERATURE_MAX = 1.0
# Above 0, a temperature is at least this: a composition's item records its temperature, and
# DynamoDB's numbers stop at 1e-130 (no smaller temperature differs from 0 in the file anyway).
TEMPERATURE_SMALLEST = 1e-10
DEFAULT_TEMPERATURE = 0.3
