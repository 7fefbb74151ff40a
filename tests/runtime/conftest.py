import sys
from pathlib import Path

# make the repository root importable (runtime/, train/) when the package is not installed
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
