"""The local stack: the whole pipeline on one machine, on moto, with no AWS account and no Docker.

It runs this checkout's own handlers (`lambdas/`), state machine (`statemachine/`) and training
package (`training_container/`), so the checkout's root must be importable: it is when Python
starts from there (`make run`, pytest); otherwise it is added here.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
