"""``python -m benchmarks``: run every benchmark and write docs/benchmarks.md."""

from benchmarks.runner import main

raise SystemExit(main())
