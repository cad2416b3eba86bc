"""The one entry point: run the declared experiments and render every figure and table.

python run_all.py              # quick profile: every figure on a laptop CPU
python run_all.py --help       # every option, with examples
"""

from pathlib import Path

from sims.runner.cli import main

if __name__ == "__main__":
    raise SystemExit(main(root=Path(__file__).resolve().parent))
